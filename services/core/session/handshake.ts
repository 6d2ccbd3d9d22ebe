import { randomBytes as nodeRandomBytes } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { Role } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import type { Handshake } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import type { Logger } from "../log.js";
import { nativeSuite } from "../crypto/index.js";
import type { CryptoSuite } from "../crypto/index.js";
import { SessionErrorCode, sessionError } from "./errors.js";
import { SESSION_ID_BYTES } from "./frame-layout.js";
import {
  checkClockSkew,
  checkHandshakeShape,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  HANDSHAKE_NONCE_BYTES,
  HANDSHAKE_VERSION,
  isP256Key,
  signTranscript,
  verifyPeerChain,
  verifyTranscriptSignature,
} from "./handshake-checks.js";
import type { PeerVerifier, VerifiedPeer } from "./handshake-checks.js";
import type { HandshakeReplayCache } from "./handshake-replay-cache.js";
import { deriveDirectionKeys } from "./keys.js";
import { Session } from "./session.js";
import type { SessionLimits } from "./session.js";
import { clientTranscriptHash, hubTranscriptHash } from "./transcript.js";

/**
 * Signed ephemeral X25519 handshake between a hub and a client, carried
 * through a relay that must not be able to read or alter the session:
 *
 *   hub -> client   Handshake(role HUB, session_id, ephemeral key, nonce,
 *                   timestamp, chain, target_spiffe_id), signed over H1
 *   client -> hub   Handshake(role CLIENT, same session_id, ...), signed
 *                   over H2, which covers both messages and the hub signature
 *
 * Both sides then derive one key per direction with HKDF-SHA256 over the
 * X25519 shared secret, salted with H2. A relay that re-routes the hub's
 * message to another client is caught because that client cannot sign as
 * the target identity. A relay that substitutes ephemeral keys breaks a
 * signature.
 */
export interface HandshakeOptions {
  /** This side's SVID chain, leaf first, DER encoded. */
  certChainDer: Uint8Array[];
  /** This side's SVID private key, ECDSA P-256. */
  privateKey: KeyObject;
  verifyPeer: PeerVerifier;
  /** Nonces seen recently, shared by every handshake of the process. */
  replayCache: HandshakeReplayCache;
  suite?: CryptoSuite;
  /** Clock in milliseconds since the Unix epoch. */
  now?: () => number;
  randomBytes?: (length: number) => Uint8Array;
  /** Largest accepted difference between the peer's timestamp and the local clock. */
  maxClockSkewMs?: number;
  sessionLimits?: Partial<SessionLimits>;
  logger?: Logger;
}

export interface HubHandshakeOptions extends HandshakeOptions {
  /** SPIFFE ID of the client the hub routes this session to. */
  targetSpiffeId: string;
}

export interface ClientHandshakeOptions extends HandshakeOptions {
  /** This client's own SPIFFE ID; a hub message aimed at another ID is rejected. */
  selfSpiffeId: string;
  /** Returns true for hub SPIFFE IDs this client accepts sessions from. */
  isAllowedHub: (spiffeId: string) => boolean;
}

interface ResolvedOptions {
  suite: CryptoSuite;
  now: () => number;
  randomBytes: (length: number) => Uint8Array;
  maxClockSkewMs: number;
}

function resolveOptions(options: HandshakeOptions): ResolvedOptions {
  if (!isP256Key(options.privateKey, "private")) throw new TypeError("handshake privateKey must be an ECDSA P-256 private KeyObject");
  if (options.certChainDer.length === 0) throw new TypeError("handshake certChainDer must contain at least the leaf certificate");
  const maxClockSkewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (!Number.isInteger(maxClockSkewMs) || maxClockSkewMs < 0) throw new TypeError(`maxClockSkewMs must be a non-negative integer, got ${maxClockSkewMs}`);
  return {
    suite: options.suite ?? nativeSuite,
    now: options.now ?? Date.now,
    randomBytes: options.randomBytes ?? ((length: number) => nodeRandomBytes(length)),
    maxClockSkewMs,
  };
}

/** Checks everything about a received message that does not depend on its role's identity rules. */
function authenticatePeerMessage(options: HandshakeOptions, resolved: ResolvedOptions, message: Handshake, expectedRole: Role, transcriptHash: () => Uint8Array): VerifiedPeer {
  checkHandshakeShape(message, expectedRole);
  const nowMs = resolved.now();
  checkClockSkew(message.timestampUnixMs, nowMs, resolved.maxClockSkewMs);
  const peer = verifyPeerChain(options.verifyPeer, message.certChainDer);
  verifyTranscriptSignature(transcriptHash(), message.signature, peer);
  // Only authenticated nonces enter the cache, so unsigned junk cannot fill it.
  // A replay can pass the skew check until timestamp + skew <= now + 2 * skew.
  options.replayCache.checkAndRemember(message.nonce, nowMs, 2 * resolved.maxClockSkewMs);
  return peer;
}

function unsignedMessage(role: Role, sessionId: Uint8Array, ephemeralPublicKey: Uint8Array, nonce: Uint8Array, nowMs: number, certChainDer: Uint8Array[], targetSpiffeId: string): Handshake {
  return {
    version: HANDSHAKE_VERSION,
    sessionId: Buffer.from(sessionId),
    role,
    ephemeralPublicKey: Buffer.from(ephemeralPublicKey),
    nonce: Buffer.from(nonce),
    timestampUnixMs: BigInt(Math.trunc(nowMs)),
    certChainDer: certChainDer.map((der) => Buffer.from(der)),
    signature: Buffer.alloc(0),
    targetSpiffeId,
  };
}

/** The hub's side: start() builds the first message, finish() checks the client's reply. */
export class HubHandshake {
  private ephemeralPrivateKey: Uint8Array | undefined;

  private constructor(
    private readonly options: HubHandshakeOptions,
    private readonly resolved: ResolvedOptions,
    private readonly message: Handshake,
    ephemeralPrivateKey: Uint8Array,
  ) {
    this.ephemeralPrivateKey = ephemeralPrivateKey;
  }

  static start(options: HubHandshakeOptions): { message: Handshake; hs: HubHandshake } {
    const resolved = resolveOptions(options);
    if (options.targetSpiffeId === "") throw new TypeError("targetSpiffeId must name the client the session is routed to");
    const ephemeral = resolved.suite.x25519GenerateKeyPair();
    const message = unsignedMessage(
      Role.ROLE_HUB,
      resolved.randomBytes(SESSION_ID_BYTES),
      ephemeral.publicKey,
      resolved.randomBytes(HANDSHAKE_NONCE_BYTES),
      resolved.now(),
      options.certChainDer,
      options.targetSpiffeId,
    );
    message.signature = signTranscript(hubTranscriptHash(message), options.privateKey);
    return { message, hs: new HubHandshake(options, resolved, message, ephemeral.privateKey) };
  }

  /** Verifies the client's reply and returns the session; may be called once. */
  finish(reply: Handshake): Session {
    const ephemeralPrivateKey = this.ephemeralPrivateKey;
    if (ephemeralPrivateKey === undefined) throw new TypeError("HubHandshake.finish was already called; start a new handshake");
    this.ephemeralPrivateKey = undefined;
    try {
      if (reply.role === Role.ROLE_CLIENT && reply.sessionId.length === SESSION_ID_BYTES && !reply.sessionId.equals(this.message.sessionId)) {
        throw sessionError(SessionErrorCode.handshakeMalformed, "client handshake carries a session_id other than the one in the hub's message; it belongs to another session and is rejected");
      }
      const transcriptHash = clientTranscriptHash(this.message, reply);
      const peer = authenticatePeerMessage(this.options, this.resolved, reply, Role.ROLE_CLIENT, () => transcriptHash);
      if (peer.spiffeId !== this.options.targetSpiffeId) {
        throw sessionError(
          SessionErrorCode.wrongPeer,
          `session was routed to ${this.options.targetSpiffeId} but answered by ${peer.spiffeId}; the relay delivered it to another client and the session is dropped`,
        );
      }
      const sharedSecret = this.resolved.suite.x25519SharedSecret(ephemeralPrivateKey, reply.ephemeralPublicKey);
      const keys = deriveDirectionKeys(this.resolved.suite, sharedSecret, transcriptHash);
      sharedSecret.fill(0);
      return new Session({
        id: this.message.sessionId,
        role: Role.ROLE_HUB,
        sendKey: keys.hubToClient,
        receiveKey: keys.clientToHub,
        peerSpiffeId: peer.spiffeId,
        peerSerial: peer.serial,
        suite: this.resolved.suite,
        now: this.resolved.now,
        limits: this.options.sessionLimits,
        logger: this.options.logger,
      });
    } finally {
      ephemeralPrivateKey.fill(0);
    }
  }
}

/** The client's side: verifies the hub's message and builds the signed reply in one step. */
export class ClientHandshake {
  static respond(options: ClientHandshakeOptions, hubMessage: Handshake): { message: Handshake; session: Session; hubSpiffeId: string } {
    const resolved = resolveOptions(options);
    const hub = authenticatePeerMessage(options, resolved, hubMessage, Role.ROLE_HUB, () => hubTranscriptHash(hubMessage));
    if (!options.isAllowedHub(hub.spiffeId)) {
      throw sessionError(SessionErrorCode.hubNotAllowed, `hub ${hub.spiffeId} is not in this client's allowed hubs; add it to the client configuration to accept its sessions`);
    }
    if (hubMessage.targetSpiffeId !== options.selfSpiffeId) {
      throw sessionError(
        SessionErrorCode.wrongTarget,
        `hub ${hub.spiffeId} addressed the session to ${hubMessage.targetSpiffeId || "(empty)"}, not to this client ${options.selfSpiffeId}; the relay misrouted it`,
      );
    }

    const ephemeral = resolved.suite.x25519GenerateKeyPair();
    try {
      const message = unsignedMessage(
        Role.ROLE_CLIENT,
        hubMessage.sessionId,
        ephemeral.publicKey,
        resolved.randomBytes(HANDSHAKE_NONCE_BYTES),
        resolved.now(),
        options.certChainDer,
        "",
      );
      const transcriptHash = clientTranscriptHash(hubMessage, message);
      message.signature = signTranscript(transcriptHash, options.privateKey);
      const sharedSecret = resolved.suite.x25519SharedSecret(ephemeral.privateKey, hubMessage.ephemeralPublicKey);
      const keys = deriveDirectionKeys(resolved.suite, sharedSecret, transcriptHash);
      sharedSecret.fill(0);
      const session = new Session({
        id: hubMessage.sessionId,
        role: Role.ROLE_CLIENT,
        sendKey: keys.clientToHub,
        receiveKey: keys.hubToClient,
        peerSpiffeId: hub.spiffeId,
        peerSerial: hub.serial,
        suite: resolved.suite,
        now: resolved.now,
        limits: options.sessionLimits,
        logger: options.logger,
      });
      return { message, session, hubSpiffeId: hub.spiffeId };
    } finally {
      ephemeral.privateKey.fill(0);
    }
  }
}
