import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync } from "node:crypto";
import type { KeyObject } from "node:crypto";
import {
  AEAD_KEY_BYTES,
  AEAD_NONCE_BYTES,
  AEAD_TAG_BYTES,
  assertByteLength,
  assertHkdfLength,
  authFailedError,
  isAllZero,
  lowOrderError,
  X25519_KEY_BYTES,
} from "./suite.js";
import type { CryptoSuite, DetachedSeal, X25519KeyPair } from "./suite.js";

/** DER prefix of a PKCS#8 X25519 private key (RFC 8410 section 7); the raw 32 bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
/** DER prefix of an X25519 SubjectPublicKeyInfo (RFC 8410 section 4); the raw 32 bytes follow. */
const X25519_SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function x25519PrivateKeyObject(raw: Uint8Array): KeyObject {
  const der = Buffer.concat([X25519_PKCS8_PREFIX, raw]);
  try {
    return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } finally {
    der.fill(0);
  }
}

function x25519PublicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: "der", type: "spki" });
}

/** Returns the raw key bytes after a fixed DER prefix, zeroing the DER copy. */
function rawKeyFromDer(der: Buffer, prefixLength: number): Uint8Array {
  const raw = new Uint8Array(der.subarray(prefixLength, prefixLength + X25519_KEY_BYTES));
  der.fill(0);
  return raw;
}

export function aeadSealDetachedNative(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): DetachedSeal {
  assertByteLength(key, AEAD_KEY_BYTES, "ChaCha20-Poly1305 key");
  assertByteLength(nonce, AEAD_NONCE_BYTES, "ChaCha20-Poly1305 nonce");
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: AEAD_TAG_BYTES });
  cipher.setAAD(aad, { plaintextLength: plaintext.length });
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  return { ciphertext, tag: cipher.getAuthTag() };
}

export function aeadOpenDetachedNative(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Uint8Array {
  assertByteLength(key, AEAD_KEY_BYTES, "ChaCha20-Poly1305 key");
  assertByteLength(nonce, AEAD_NONCE_BYTES, "ChaCha20-Poly1305 nonce");
  if (tag.length !== AEAD_TAG_BYTES) throw authFailedError();
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: AEAD_TAG_BYTES });
  decipher.setAuthTag(tag);
  decipher.setAAD(aad, { plaintextLength: ciphertext.length });
  const plaintext = decipher.update(ciphertext);
  try {
    decipher.final();
  } catch (err) {
    // The plaintext was computed before the tag check failed; it must not survive.
    plaintext.fill(0);
    throw authFailedError(err);
  }
  return plaintext;
}

export function aeadSealNative(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const { ciphertext, tag } = aeadSealDetachedNative(key, nonce, plaintext, aad);
  // node:crypto has no output-buffer API, so joining the tag costs one copy
  // of the ciphertext; sessions use the detached form to avoid it.
  const sealed = Buffer.allocUnsafe(ciphertext.length + AEAD_TAG_BYTES);
  sealed.set(ciphertext, 0);
  sealed.set(tag, ciphertext.length);
  return sealed;
}

export function aeadOpenNative(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  assertByteLength(key, AEAD_KEY_BYTES, "ChaCha20-Poly1305 key");
  assertByteLength(nonce, AEAD_NONCE_BYTES, "ChaCha20-Poly1305 nonce");
  if (sealed.length < AEAD_TAG_BYTES) throw authFailedError();
  const input = toBuffer(sealed);
  const bodyLength = input.length - AEAD_TAG_BYTES;
  return aeadOpenDetachedNative(key, nonce, input.subarray(0, bodyLength), input.subarray(bodyLength), aad);
}

export function hkdfSha256Native(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  assertHkdfLength(length);
  return new Uint8Array(hkdfSync("sha256", ikm, salt, info, length));
}

/** The node:crypto (OpenSSL) suite: the one the session hot path uses. */
export const nativeSuite: CryptoSuite = {
  name: "native",
  aeadSeal: aeadSealNative,
  aeadOpen: aeadOpenNative,
  aeadSealDetached: aeadSealDetachedNative,
  aeadOpenDetached: aeadOpenDetachedNative,

  x25519GenerateKeyPair(): X25519KeyPair {
    // Exported as DER on purpose: exporting an x25519 KeyObject as JWK hangs
    // the process on Node 20.20.2.
    const pair = generateKeyPairSync("x25519");
    return {
      privateKey: rawKeyFromDer(pair.privateKey.export({ format: "der", type: "pkcs8" }), X25519_PKCS8_PREFIX.length),
      publicKey: rawKeyFromDer(pair.publicKey.export({ format: "der", type: "spki" }), X25519_SPKI_PREFIX.length),
    };
  },

  x25519SharedSecret(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
    assertByteLength(privateKey, X25519_KEY_BYTES, "X25519 private key");
    assertByteLength(peerPublicKey, X25519_KEY_BYTES, "X25519 peer public key");
    let secret: Buffer;
    try {
      secret = diffieHellman({ privateKey: x25519PrivateKeyObject(privateKey), publicKey: x25519PublicKeyObject(peerPublicKey) });
    } catch (err) {
      // OpenSSL 3 fails the derivation itself when the result is all zeros.
      throw lowOrderError(err);
    }
    if (isAllZero(secret)) throw lowOrderError();
    return new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength);
  },

  hkdfSha256: hkdfSha256Native,
};
