export { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, HKDF_SHA256_MAX_BYTES, X25519_KEY_BYTES, isAllZero } from "./suite.js";
export type { CryptoSuite, X25519KeyPair } from "./suite.js";
export { nativeSuite, hkdfSha256Native as hkdfSha256 } from "./native.js";
export { nobleSuite } from "./noble.js";
