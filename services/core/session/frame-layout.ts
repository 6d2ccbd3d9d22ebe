import { AEAD_NONCE_BYTES } from "../crypto/index.js";

/** Session id length in bytes, chosen by the hub. */
export const SESSION_ID_BYTES = 16;
/** Associated data: session id (16) || direction (1) || sequence (8, big-endian) || key epoch (4, big-endian). */
export const FRAME_AAD_BYTES = SESSION_ID_BYTES + 1 + 8 + 4;
/** Largest sequence number: the nonce field is 64 bits wide. */
export const MAX_SEQUENCE = 2n ** 64n - 1n;
/** Largest key epoch: the nonce prefix and the proto field are 32 bits wide. */
export const MAX_KEY_EPOCH = 2 ** 32 - 1;

/**
 * Reusable nonce and associated-data buffers of one direction. The nonce is
 * key epoch (4 bytes, big-endian) || sequence (8 bytes, big-endian), so it is
 * 4 zero bytes || sequence at epoch 0, as in RFC 8439 section 2.8's 96-bit
 * nonce built from a 32-bit constant and a 64-bit counter. Each (key, nonce)
 * pair is used once because the sequence only grows within an epoch and
 * every epoch has its own key.
 */
export class FrameLayout {
  readonly nonce = Buffer.alloc(AEAD_NONCE_BYTES);
  readonly aad = Buffer.alloc(FRAME_AAD_BYTES);

  constructor(sessionId: Uint8Array, directionByte: number) {
    this.aad.set(sessionId, 0);
    this.aad[SESSION_ID_BYTES] = directionByte;
  }

  /** Writes the nonce and associated data of one frame into the shared buffers. */
  prepare(epoch: number, sequence: bigint): void {
    this.nonce.writeUInt32BE(epoch, 0);
    this.nonce.writeBigUInt64BE(sequence, 4);
    this.aad.writeBigUInt64BE(sequence, SESSION_ID_BYTES + 1);
    this.aad.writeUInt32BE(epoch, SESSION_ID_BYTES + 9);
  }
}
