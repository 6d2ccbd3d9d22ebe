import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";
import type { Handshake } from "../../../gen/ewii/tunnel/v1/tunnel.js";

/** Domain-separation labels that start each transcript hash. */
const HUB_TRANSCRIPT_LABEL = "ewii/1 handshake hub";
const CLIENT_TRANSCRIPT_LABEL = "ewii/1 handshake client";

/**
 * Feeds one handshake message into a hash in a fixed, length-prefixed
 * encoding. The protobuf encoding is not used because a re-encoding of the
 * same message need not produce the same bytes; this one is unambiguous.
 * Every field except the signature is covered.
 */
function updateWithMessage(hash: Hash, message: Handshake): void {
  updateUint32(hash, message.version);
  updateBytes(hash, message.sessionId);
  updateUint32(hash, message.role);
  updateBytes(hash, message.ephemeralPublicKey);
  updateBytes(hash, message.nonce);
  const timestamp = Buffer.alloc(8);
  timestamp.writeBigInt64BE(message.timestampUnixMs);
  hash.update(timestamp);
  updateUint32(hash, message.certChainDer.length);
  for (const der of message.certChainDer) updateBytes(hash, der);
  updateBytes(hash, Buffer.from(message.targetSpiffeId, "utf8"));
}

function updateUint32(hash: Hash, value: number): void {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  hash.update(bytes);
}

function updateBytes(hash: Hash, bytes: Uint8Array): void {
  updateUint32(hash, bytes.length);
  hash.update(bytes);
}

function updateString(hash: Hash, text: string): void {
  updateBytes(hash, Buffer.from(text, "utf8"));
}

/** SHA-256 transcript hash that the hub signs: its own message alone. */
export function hubTranscriptHash(hubMessage: Handshake): Buffer {
  const hash = createHash("sha256");
  updateString(hash, HUB_TRANSCRIPT_LABEL);
  updateWithMessage(hash, hubMessage);
  return hash.digest();
}

/**
 * SHA-256 transcript hash that the client signs and that salts the session
 * keys: both messages and the hub's signature, so both ephemeral keys, both
 * nonces, both certificate chains, both timestamps, the version and the
 * target identity are bound together.
 */
export function clientTranscriptHash(hubMessage: Handshake, clientMessage: Handshake): Buffer {
  const hash = createHash("sha256");
  updateString(hash, CLIENT_TRANSCRIPT_LABEL);
  updateBytes(hash, hubTranscriptHash(hubMessage));
  updateBytes(hash, hubMessage.signature);
  updateWithMessage(hash, clientMessage);
  return hash.digest();
}
