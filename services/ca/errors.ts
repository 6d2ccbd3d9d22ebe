import { status } from "@grpc/grpc-js";
import { EwiiError } from "../core/errors.js";

/** Stable error codes raised by the CA service. */
export const CaErrorCode = {
  kekMissing: "ERR_KEK_MISSING",
  kekWrong: "ERR_KEK_WRONG",
  kekInvalid: "ERR_KEK_INVALID",
  kekFilePermissions: "ERR_KEK_FILE_PERMISSIONS",
  storeCorrupt: "ERR_CA_STORE_CORRUPT",
  notInitialized: "ERR_CA_NOT_INITIALIZED",
  alreadyInitialized: "ERR_ALREADY_INITIALIZED",
  tenantNameInvalid: "ERR_TENANT_NAME_INVALID",
  tenantExists: "ERR_TENANT_EXISTS",
  tenantNotFound: "ERR_TENANT_NOT_FOUND",
  tenantDisabled: "ERR_TENANT_DISABLED",
  tokenMalformed: "ERR_TOKEN_MALFORMED",
  tokenUnknown: "ERR_TOKEN_UNKNOWN",
  tokenExpired: "ERR_TOKEN_EXPIRED",
  tokenUsed: "ERR_TOKEN_USED",
  tokenRevoked: "ERR_TOKEN_REVOKED",
  tokenTtlInvalid: "ERR_TOKEN_TTL_INVALID",
  spiffeIdPathInvalid: "ERR_SPIFFE_ID_PATH_INVALID",
  renewSameKey: "ERR_RENEW_SAME_KEY",
  renewUnknownSvid: "ERR_RENEW_UNKNOWN_SVID",
  svidRevoked: "ERR_SVID_REVOKED",
  caExpired: "ERR_CA_EXPIRED",
  trustDomainUnknown: "ERR_TRUST_DOMAIN_UNKNOWN",
  rolloverPhase: "ERR_ROLLOVER_PHASE",
  rolloverPreviousStillValid: "ERR_ROLLOVER_PREVIOUS_STILL_VALID",
  revocationTargetInvalid: "ERR_REVOCATION_TARGET_INVALID",
  revocationReasonTooLong: "ERR_REVOCATION_REASON_TOO_LONG",
  serialNotFound: "ERR_SERIAL_NOT_FOUND",
  notAdmin: "ERR_NOT_ADMIN",
  tenantAccessDenied: "ERR_TENANT_ACCESS_DENIED",
  peerRequired: "ERR_PEER_REQUIRED",
  peerUntrusted: "ERR_PEER_UNTRUSTED",
  argumentMissing: "ERR_ARGUMENT_MISSING",
  caUnreachable: "ERR_CA_UNREACHABLE",
  caFingerprintMismatch: "ERR_CA_FINGERPRINT_MISMATCH",
  caResponseInvalid: "ERR_CA_RESPONSE_INVALID",
} as const;

export type CaErrorCode = (typeof CaErrorCode)[keyof typeof CaErrorCode];

export function invalidArgument(code: CaErrorCode, message: string): EwiiError {
  return new EwiiError(code, message, { status: status.INVALID_ARGUMENT });
}

export function notFound(code: CaErrorCode, message: string): EwiiError {
  return new EwiiError(code, message, { status: status.NOT_FOUND });
}

export function failedPrecondition(code: CaErrorCode, message: string): EwiiError {
  return new EwiiError(code, message, { status: status.FAILED_PRECONDITION });
}

export function unauthenticated(code: CaErrorCode, message: string): EwiiError {
  return new EwiiError(code, message, { status: status.UNAUTHENTICATED });
}

export function permissionDenied(code: CaErrorCode, message: string): EwiiError {
  return new EwiiError(code, message, { status: status.PERMISSION_DENIED });
}
