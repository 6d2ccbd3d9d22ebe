import type { CryptoSuite } from "../crypto/index.js";
import { AEAD_KEY_BYTES } from "../crypto/index.js";

/** One traffic direction; the byte is the sender's Role value, as in SealedFrame.direction. */
export type Direction = "hub->client" | "client->hub";

const KEY_INFO_PREFIX = "ewii/1 ";
const REKEY_INFO_PREFIX = "ewii/1 rekey ";

function infoWithEpoch(prefix: string, direction: Direction, epoch: number): Uint8Array {
  const label = Buffer.from(prefix + direction, "utf8");
  const info = Buffer.alloc(label.length + 4);
  label.copy(info, 0);
  info.writeUInt32BE(epoch, label.length);
  return info;
}

/**
 * Derives the epoch-0 key of each direction: HKDF-SHA256 with the X25519
 * shared secret as input key material, the final transcript hash as salt and
 * "ewii/1 <direction>" || epoch (uint32, big-endian) as info.
 */
export function deriveDirectionKeys(suite: CryptoSuite, sharedSecret: Uint8Array, transcriptHash: Uint8Array): { hubToClient: Uint8Array; clientToHub: Uint8Array } {
  return {
    hubToClient: suite.hkdfSha256(sharedSecret, transcriptHash, infoWithEpoch(KEY_INFO_PREFIX, "hub->client", 0), AEAD_KEY_BYTES),
    clientToHub: suite.hkdfSha256(sharedSecret, transcriptHash, infoWithEpoch(KEY_INFO_PREFIX, "client->hub", 0), AEAD_KEY_BYTES),
  };
}

/**
 * Derives the key of `nextEpoch` from the key of the epoch before it. The
 * step is one-way, so a key leaked at epoch n opens no frame of an earlier
 * epoch, and the receiver follows the sender without a round trip.
 */
export function ratchetKey(suite: CryptoSuite, currentKey: Uint8Array, sessionId: Uint8Array, direction: Direction, nextEpoch: number): Uint8Array {
  return suite.hkdfSha256(currentKey, sessionId, infoWithEpoch(REKEY_INFO_PREFIX, direction, nextEpoch), AEAD_KEY_BYTES);
}
