import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
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

/**
 * The pure-JavaScript suite (@noble/ciphers, @noble/curves, @noble/hashes):
 * an independent implementation to cross-check the native one, and a
 * fallback where OpenSSL lacks ChaCha20-Poly1305 or X25519.
 */
export const nobleSuite: CryptoSuite = {
  name: "noble",

  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    assertByteLength(key, AEAD_KEY_BYTES, "ChaCha20-Poly1305 key");
    assertByteLength(nonce, AEAD_NONCE_BYTES, "ChaCha20-Poly1305 nonce");
    return chacha20poly1305(key, nonce, aad).encrypt(plaintext);
  },

  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
    assertByteLength(key, AEAD_KEY_BYTES, "ChaCha20-Poly1305 key");
    assertByteLength(nonce, AEAD_NONCE_BYTES, "ChaCha20-Poly1305 nonce");
    if (sealed.length < AEAD_TAG_BYTES) throw authFailedError();
    try {
      // noble checks the tag in constant time before it decrypts anything.
      return chacha20poly1305(key, nonce, aad).decrypt(sealed);
    } catch (err) {
      throw authFailedError(err);
    }
  },

  aeadSealDetached(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): DetachedSeal {
    const sealed = nobleSuite.aeadSeal(key, nonce, plaintext, aad);
    return { ciphertext: sealed.subarray(0, sealed.length - AEAD_TAG_BYTES), tag: sealed.subarray(sealed.length - AEAD_TAG_BYTES) };
  },

  aeadOpenDetached(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Uint8Array {
    if (tag.length !== AEAD_TAG_BYTES) throw authFailedError();
    const sealed = new Uint8Array(ciphertext.length + AEAD_TAG_BYTES);
    sealed.set(ciphertext, 0);
    sealed.set(tag, ciphertext.length);
    return nobleSuite.aeadOpen(key, nonce, sealed, aad);
  },

  x25519GenerateKeyPair(): X25519KeyPair {
    const { secretKey, publicKey } = x25519.keygen();
    return { privateKey: secretKey, publicKey };
  },

  x25519SharedSecret(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
    assertByteLength(privateKey, X25519_KEY_BYTES, "X25519 private key");
    assertByteLength(peerPublicKey, X25519_KEY_BYTES, "X25519 peer public key");
    let secret: Uint8Array;
    try {
      // noble rejects low-order inputs itself; the check below stays as the rule's own guard.
      secret = x25519.getSharedSecret(privateKey, peerPublicKey);
    } catch (err) {
      throw lowOrderError(err);
    }
    if (isAllZero(secret)) throw lowOrderError();
    return secret;
  },

  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    assertHkdfLength(length);
    return hkdf(sha256, Uint8Array.from(ikm), Uint8Array.from(salt), Uint8Array.from(info), length);
  },
};
