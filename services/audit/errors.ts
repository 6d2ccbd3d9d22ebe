import { status } from "@grpc/grpc-js";
import { EwiiError } from "../core/errors.js";

/** Stable error codes raised by the audit service and log. */
export const AuditErrorCode = {
  recordInvalid: "ERR_AUDIT_RECORD_INVALID",
  logCorrupt: "ERR_AUDIT_LOG_CORRUPT",
  logUnavailable: "ERR_AUDIT_UNAVAILABLE",
  logClosed: "ERR_AUDIT_LOG_CLOSED",
  keyInvalid: "ERR_AUDIT_KEY_INVALID",
  notAppender: "ERR_AUDIT_NOT_APPENDER",
  notAdmin: "ERR_AUDIT_NOT_ADMIN",
  queryInvalid: "ERR_AUDIT_QUERY_INVALID",
  tailTooSlow: "ERR_AUDIT_TAIL_TOO_SLOW",
} as const;

/** Maximum length of an untrusted value quoted in an error message, in characters. */
const MAX_QUOTED_CHARS = 120;

/** Quotes an untrusted, non-secret value for an error message, shortened if long. */
export function quote(value: string): string {
  const shown = value.length > MAX_QUOTED_CHARS ? `${value.slice(0, MAX_QUOTED_CHARS)}...(${value.length} chars)` : value;
  return JSON.stringify(shown);
}

/** Builds the INVALID_ARGUMENT error for a record the caller sent. */
export function recordInvalid(message: string): EwiiError {
  return new EwiiError(AuditErrorCode.recordInvalid, message, { status: status.INVALID_ARGUMENT });
}

/** Builds the error for a log whose files fail a structural check at open. */
export function logCorrupt(message: string): EwiiError {
  return new EwiiError(AuditErrorCode.logCorrupt, message, { status: status.INTERNAL });
}
