import { status } from "@grpc/grpc-js";
import { EwiiError } from "../errors.js";

/** ChaCha20-Poly1305 key length in bytes (RFC 8439 section 2.8). */
export const AEAD_KEY_BYTES = 32;
/** ChaCha20-Poly1305 nonce length in bytes (RFC 8439 section 2.8). */
export const AEAD_NONCE_BYTES = 12;
/** Poly1305 tag length in bytes, appended to every ciphertext. */
export const AEAD_TAG_BYTES = 16;
/** X25519 private and public key length in bytes (RFC 7748 section 5). */
export const X25519_KEY_BYTES = 32;
/** Largest HKDF-SHA256 output: 255 blocks of 32 bytes (RFC 5869 section 2.3). */
export const HKDF_SHA256_MAX_BYTES = 255 * 32;

/** A raw X25519 key pair, both halves 32 bytes. */
export interface X25519KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

/**
 * The primitives of the end-to-end session behind one interface, so that the
 * node:crypto and @noble implementations are interchangeable and can check
 * each other. Wrong key, nonce or output lengths are caller bugs and throw
 * TypeError. A bad tag or a low-order peer key comes from the wire, so it
 * throws EwiiError.
 */
/** ChaCha20-Poly1305 output with the tag kept apart from the ciphertext. */
export interface DetachedSeal {
  ciphertext: Uint8Array;
  /** The 16-byte Poly1305 tag. */
  tag: Uint8Array;
}

export interface CryptoSuite {
  readonly name: string;
  /** Encrypts with ChaCha20-Poly1305 (RFC 8439) and returns ciphertext || 16-byte tag. */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Verifies the tag, then decrypts; throws ERR_CRYPTO_AUTH_FAILED on any mismatch. */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Encrypts like `aeadSeal` but returns the ciphertext and the 16-byte tag apart, without joining them. */
  aeadSealDetached(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): DetachedSeal;
  /** Opens like `aeadOpen`, with the tag given apart from the ciphertext. */
  aeadOpenDetached(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Generates an ephemeral X25519 key pair (RFC 7748) as raw 32-byte strings. */
  x25519GenerateKeyPair(): X25519KeyPair;
  /** Computes X25519(privateKey, peerPublicKey); throws ERR_CRYPTO_X25519_LOW_ORDER on an all-zero result. */
  x25519SharedSecret(privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array;
  /** Derives `length` bytes with HKDF-SHA256 (RFC 5869). */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
}

export function assertByteLength(value: Uint8Array, expected: number, name: string): void {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  if (value.length !== expected) throw new TypeError(`${name} must be ${expected} bytes, got ${value.length}`);
}

export function assertHkdfLength(length: number): void {
  if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_MAX_BYTES) {
    throw new TypeError(`HKDF-SHA256 output length must be an integer from 1 to ${HKDF_SHA256_MAX_BYTES}, got ${length}`);
  }
}

/** Returns true when every byte is zero, in time that depends only on the length. */
export function isAllZero(bytes: Uint8Array): boolean {
  let accumulator = 0;
  for (let i = 0; i < bytes.length; i++) accumulator |= bytes[i];
  return accumulator === 0;
}

export function authFailedError(cause?: unknown): EwiiError {
  return new EwiiError("ERR_CRYPTO_AUTH_FAILED", "ChaCha20-Poly1305 tag verification failed: the ciphertext, nonce, associated data or key do not match", {
    status: status.UNAUTHENTICATED,
    cause,
  });
}

/**
 * RFC 7748 section 6.1: a peer public key of small order yields the all-zero
 * shared secret, which carries no secret at all and must be rejected.
 */
export function lowOrderError(cause?: unknown): EwiiError {
  return new EwiiError("ERR_CRYPTO_X25519_LOW_ORDER", "X25519 peer public key is a low-order point (the shared secret would be all zeros); the peer must send a fresh ephemeral key", {
    status: status.INVALID_ARGUMENT,
    cause,
  });
}
