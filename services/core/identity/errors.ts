import { status } from "@grpc/grpc-js";
import { EwiiError } from "../errors.js";

/** Stable error codes raised by the identity module. */
export const IdentityErrorCode = {
  spiffeIdInvalid: "ERR_SPIFFE_ID_INVALID",
  bundleInvalid: "ERR_BUNDLE_INVALID",
  csrInvalid: "ERR_CSR_INVALID",
  csrBadSignature: "ERR_CSR_BAD_SIGNATURE",
  csrUnsupportedKey: "ERR_CSR_UNSUPPORTED_KEY",
  svidMalformed: "ERR_SVID_MALFORMED",
  svidNoUriSan: "ERR_SVID_NO_URI_SAN",
  svidMultipleUriSans: "ERR_SVID_MULTIPLE_URI_SANS",
  svidInvalidSpiffeId: "ERR_SVID_INVALID_SPIFFE_ID",
  svidRootPath: "ERR_SVID_ROOT_PATH",
  svidLeafIsCa: "ERR_SVID_LEAF_IS_CA",
  svidKeyUsage: "ERR_SVID_KEY_USAGE",
  svidUnknownCriticalExtension: "ERR_SVID_UNKNOWN_CRITICAL_EXTENSION",
  svidExpired: "ERR_SVID_EXPIRED",
  svidNotYetValid: "ERR_SVID_NOT_YET_VALID",
  svidUnknownTrustDomain: "ERR_SVID_UNKNOWN_TRUST_DOMAIN",
  svidUntrustedChain: "ERR_SVID_UNTRUSTED_CHAIN",
  svidSignerNotCa: "ERR_SVID_SIGNER_NOT_CA",
  svidPathLength: "ERR_SVID_PATH_LENGTH",
} as const;

export type IdentityErrorCode = (typeof IdentityErrorCode)[keyof typeof IdentityErrorCode];

/** Maximum length of an untrusted value quoted in an error message, in characters. */
const MAX_QUOTED_CHARS = 120;

/** Quotes an untrusted, non-secret value for an error message, shortened if long. */
export function quote(value: string): string {
  const shown = value.length > MAX_QUOTED_CHARS ? `${value.slice(0, MAX_QUOTED_CHARS)}...(${value.length} chars)` : value;
  return JSON.stringify(shown);
}

/** Builds an X509-SVID validation error; every such error is UNAUTHENTICATED. */
export function svidError(code: IdentityErrorCode, message: string, cause?: unknown): EwiiError {
  return new EwiiError(code, message, { status: status.UNAUTHENTICATED, cause });
}

/** Builds an error for a rejected CSR; every such error is INVALID_ARGUMENT. */
export function csrError(code: IdentityErrorCode, message: string, cause?: unknown): EwiiError {
  return new EwiiError(code, message, { status: status.INVALID_ARGUMENT, cause });
}
