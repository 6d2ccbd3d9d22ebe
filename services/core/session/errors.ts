import { status } from "@grpc/grpc-js";
import { EwiiError } from "../errors.js";

/**
 * Stable error codes of the session layer. Handshake errors start with
 * ERR_SESSION_, errors about one received frame with ERR_FRAME_.
 */
export const SessionErrorCode = {
  handshakeMalformed: "ERR_SESSION_HANDSHAKE_MALFORMED",
  versionUnsupported: "ERR_SESSION_VERSION_UNSUPPORTED",
  clockSkew: "ERR_SESSION_CLOCK_SKEW",
  peerInvalid: "ERR_SESSION_PEER_INVALID",
  peerKeyUnsupported: "ERR_SESSION_PEER_KEY_UNSUPPORTED",
  badSignature: "ERR_SESSION_BAD_SIGNATURE",
  handshakeReplay: "ERR_SESSION_HANDSHAKE_REPLAY",
  replayCacheFull: "ERR_SESSION_REPLAY_CACHE_FULL",
  hubNotAllowed: "ERR_SESSION_HUB_NOT_ALLOWED",
  wrongTarget: "ERR_SESSION_WRONG_TARGET",
  wrongPeer: "ERR_SESSION_WRONG_PEER",
  closed: "ERR_SESSION_CLOSED",
  sequenceExhausted: "ERR_SESSION_SEQUENCE_EXHAUSTED",
  frameMalformed: "ERR_FRAME_MALFORMED",
  frameTooLarge: "ERR_FRAME_TOO_LARGE",
  frameWrongSession: "ERR_FRAME_WRONG_SESSION",
  frameWrongDirection: "ERR_FRAME_WRONG_DIRECTION",
  frameWrongEpoch: "ERR_FRAME_WRONG_EPOCH",
  frameReplayed: "ERR_FRAME_REPLAYED",
  frameTooOld: "ERR_FRAME_TOO_OLD",
  frameAuthFailed: "ERR_FRAME_AUTH_FAILED",
} as const;

export type SessionErrorCode = (typeof SessionErrorCode)[keyof typeof SessionErrorCode];

const STATUS_BY_CODE: Record<SessionErrorCode, status> = {
  ERR_SESSION_HANDSHAKE_MALFORMED: status.INVALID_ARGUMENT,
  ERR_SESSION_VERSION_UNSUPPORTED: status.FAILED_PRECONDITION,
  ERR_SESSION_CLOCK_SKEW: status.FAILED_PRECONDITION,
  ERR_SESSION_PEER_INVALID: status.UNAUTHENTICATED,
  ERR_SESSION_PEER_KEY_UNSUPPORTED: status.UNAUTHENTICATED,
  ERR_SESSION_BAD_SIGNATURE: status.UNAUTHENTICATED,
  ERR_SESSION_HANDSHAKE_REPLAY: status.PERMISSION_DENIED,
  ERR_SESSION_REPLAY_CACHE_FULL: status.RESOURCE_EXHAUSTED,
  ERR_SESSION_HUB_NOT_ALLOWED: status.PERMISSION_DENIED,
  ERR_SESSION_WRONG_TARGET: status.PERMISSION_DENIED,
  ERR_SESSION_WRONG_PEER: status.PERMISSION_DENIED,
  ERR_SESSION_CLOSED: status.FAILED_PRECONDITION,
  ERR_SESSION_SEQUENCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  ERR_FRAME_MALFORMED: status.INVALID_ARGUMENT,
  ERR_FRAME_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  ERR_FRAME_WRONG_SESSION: status.INVALID_ARGUMENT,
  ERR_FRAME_WRONG_DIRECTION: status.INVALID_ARGUMENT,
  ERR_FRAME_WRONG_EPOCH: status.PERMISSION_DENIED,
  ERR_FRAME_REPLAYED: status.PERMISSION_DENIED,
  ERR_FRAME_TOO_OLD: status.PERMISSION_DENIED,
  ERR_FRAME_AUTH_FAILED: status.UNAUTHENTICATED,
};

/** Builds the EwiiError for a session code with its gRPC status. */
export function sessionError(code: SessionErrorCode, message: string, cause?: unknown): EwiiError {
  return new EwiiError(code, message, { status: STATUS_BY_CODE[code], cause });
}
