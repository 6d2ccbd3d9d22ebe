import { status } from "@grpc/grpc-js";
import { EwiiError } from "../core/errors.js";

/** Stable error codes raised by the policy service. */
export const PolicyErrorCode = {
  invalid: "ERR_POLICY_INVALID",
  notFound: "ERR_POLICY_NOT_FOUND",
  permissionDenied: "ERR_POLICY_PERMISSION_DENIED",
  requestInvalid: "ERR_POLICY_REQUEST_INVALID",
  fileUnreadable: "ERR_POLICY_FILE_UNREADABLE",
} as const;

/** Builds the error for a policy document that failed validation; always INVALID_ARGUMENT. */
export function policyInvalid(message: string, cause?: unknown): EwiiError {
  return new EwiiError(PolicyErrorCode.invalid, message, { status: status.INVALID_ARGUMENT, cause });
}
