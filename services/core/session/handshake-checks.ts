import { sign, verify } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { Role } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import type { Handshake } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import { isEwiiError } from "../errors.js";
import { X25519_KEY_BYTES } from "../crypto/index.js";
import { SessionErrorCode, sessionError } from "./errors.js";
import { SESSION_ID_BYTES } from "./frame-layout.js";

/** Handshake protocol version this code speaks. */
export const HANDSHAKE_VERSION = 1;
/** Length of the fresh random nonce in each handshake message. */
export const HANDSHAKE_NONCE_BYTES = 32;
/** Default largest difference between a peer's timestamp and the local clock. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000;
/** Maximum certificate chain length accepted from a peer, leaf included. */
export const MAX_CERT_CHAIN_LENGTH = 8;
/** Longest DER ECDSA P-256 signature: SEQUENCE of two INTEGERs of up to 33 bytes. */
const MAX_ECDSA_P256_SIGNATURE_BYTES = 72;

/** The peer identity that a PeerVerifier returns for a valid chain. */
export interface VerifiedPeer {
  spiffeId: string;
  /** Public key of the leaf certificate; must be ECDSA P-256. */
  publicKey: KeyObject;
  /** Leaf serial number, lowercase hexadecimal. */
  serial: string;
}

/**
 * Validates a peer's certificate chain (leaf first, DER) against the trust
 * bundles and revocation state, and throws if it is invalid. Injected so
 * that this layer does not depend on the identity module.
 */
export type PeerVerifier = (chainDer: Uint8Array[]) => VerifiedPeer;

/** Checks field presence and lengths; the signature and identity are checked later. */
export function checkHandshakeShape(message: Handshake, expectedRole: Role): void {
  const malformed = (problem: string): never => {
    throw sessionError(SessionErrorCode.handshakeMalformed, `handshake from ${Role[expectedRole]} is malformed: ${problem}`);
  };
  if (message.version !== HANDSHAKE_VERSION) {
    throw sessionError(SessionErrorCode.versionUnsupported, `handshake version ${message.version} is not supported; this side speaks version ${HANDSHAKE_VERSION}`);
  }
  if (message.role !== expectedRole) malformed(`role is ${Role[message.role] ?? message.role}, expected ${Role[expectedRole]}`);
  if (message.sessionId.length !== SESSION_ID_BYTES) malformed(`session_id is ${message.sessionId.length} bytes, expected ${SESSION_ID_BYTES}`);
  if (message.ephemeralPublicKey.length !== X25519_KEY_BYTES) malformed(`ephemeral_public_key is ${message.ephemeralPublicKey.length} bytes, expected ${X25519_KEY_BYTES}`);
  if (message.nonce.length !== HANDSHAKE_NONCE_BYTES) malformed(`nonce is ${message.nonce.length} bytes, expected ${HANDSHAKE_NONCE_BYTES}`);
  if (message.certChainDer.length === 0 || message.certChainDer.length > MAX_CERT_CHAIN_LENGTH) {
    malformed(`cert_chain_der has ${message.certChainDer.length} certificates, expected 1 to ${MAX_CERT_CHAIN_LENGTH}`);
  }
  if (message.certChainDer.some((der) => der.length === 0)) malformed("cert_chain_der contains an empty certificate");
  if (message.signature.length === 0 || message.signature.length > MAX_ECDSA_P256_SIGNATURE_BYTES) {
    malformed(`signature is ${message.signature.length} bytes, expected 1 to ${MAX_ECDSA_P256_SIGNATURE_BYTES}`);
  }
}

/** Rejects a timestamp further than maxSkewMs from the local clock, naming the measured skew. */
export function checkClockSkew(timestampUnixMs: bigint, nowMs: number, maxSkewMs: number): void {
  const skewMs = Number(timestampUnixMs - BigInt(Math.trunc(nowMs)));
  if (Math.abs(skewMs) > maxSkewMs) {
    const direction = skewMs > 0 ? "ahead of" : "behind";
    throw sessionError(
      SessionErrorCode.clockSkew,
      `peer clock is ${Math.abs(skewMs)} ms ${direction} the local clock, over the allowed ${maxSkewMs} ms; synchronize both clocks (NTP) and retry`,
    );
  }
}

/** Runs the injected chain verifier and checks that the leaf key can verify ECDSA P-256 signatures. */
export function verifyPeerChain(verifyPeer: PeerVerifier, chainDer: Uint8Array[]): VerifiedPeer {
  let peer: VerifiedPeer;
  try {
    peer = verifyPeer(chainDer);
  } catch (err) {
    // Identity errors keep their own stable code; anything else is wrapped.
    if (isEwiiError(err)) throw err;
    throw sessionError(SessionErrorCode.peerInvalid, "peer certificate chain is invalid; the peer needs a valid SVID from a trusted CA", err);
  }
  if (!isP256Key(peer.publicKey, "public")) {
    throw sessionError(SessionErrorCode.peerKeyUnsupported, `peer ${peer.spiffeId} has a leaf key that is not ECDSA P-256; SVID keys must be P-256`);
  }
  return peer;
}

/** Signs a transcript hash with ECDSA P-256 SHA-256; the signature is DER encoded. */
export function signTranscript(transcriptHash: Uint8Array, privateKey: KeyObject): Buffer {
  return sign("sha256", transcriptHash, { key: privateKey, dsaEncoding: "der" });
}

export function verifyTranscriptSignature(transcriptHash: Uint8Array, signature: Uint8Array, peer: VerifiedPeer): void {
  let valid = false;
  try {
    valid = verify("sha256", transcriptHash, { key: peer.publicKey, dsaEncoding: "der" }, signature);
  } catch {
    // A signature that does not parse as DER is as bad as one that does not verify.
    valid = false;
  }
  if (!valid) {
    throw sessionError(SessionErrorCode.badSignature, `handshake signature of ${peer.spiffeId} does not verify over the transcript; the message was altered or signed with another key`);
  }
}

export function isP256Key(key: KeyObject, type: "public" | "private"): boolean {
  return key.type === type && key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
}
