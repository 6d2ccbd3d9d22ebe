import { Metadata, status } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";
import type { Logger } from "winston";

/**
 * Domain error with a stable code (`ERR_...`) and a public message that is
 * safe to send to a peer. The cause stays in logs and is never sent.
 */
export class EwiiError extends Error {
  readonly code: string;
  readonly status: status;
  readonly details: Readonly<Record<string, string | number | boolean>>;

  constructor(
    code: string,
    message: string,
    options: {
      status?: status;
      cause?: unknown;
      details?: Record<string, string | number | boolean>;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "EwiiError";
    this.code = code;
    this.status = options.status ?? status.FAILED_PRECONDITION;
    this.details = options.details ?? {};
  }
}

/** Metadata key carrying the stable error code on every failed call. */
export const ERROR_CODE_METADATA_KEY = "ewii-error-code";

export function isEwiiError(err: unknown): err is EwiiError {
  return err instanceof EwiiError;
}

/** Narrows an unknown thrown value to an Error without losing its message. */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Maps any thrown value to the status sent to a gRPC caller. Domain errors
 * keep their code and public message; anything else becomes INTERNAL with a
 * generic message while the cause is logged.
 */
export function toServiceError(err: unknown, logger: Logger, fields: Record<string, unknown> = {}): Partial<ServiceError> {
  const metadata = new Metadata();
  if (isEwiiError(err)) {
    metadata.set(ERROR_CODE_METADATA_KEY, err.code);
    const level = err.status === status.INTERNAL || err.status === status.UNAVAILABLE ? "error" : "warn";
    logger.log(level, err.message, {
      ...fields,
      error_code: err.code,
      ...(err.cause === undefined ? {} : { cause: asError(err.cause).message }),
    });
    return { code: err.status, details: `${err.code}: ${err.message}`, metadata };
  }
  const cause = asError(err);
  metadata.set(ERROR_CODE_METADATA_KEY, "ERR_INTERNAL");
  logger.error("request failed with an unexpected error", { ...fields, error_code: "ERR_INTERNAL", cause: cause.message, stack: cause.stack });
  return { code: status.INTERNAL, details: "ERR_INTERNAL: internal error; the server log has the cause", metadata };
}

/** Reads the stable error code from an EwiiError or a failed gRPC call, or undefined. */
export function errorCodeOf(err: unknown): string | undefined {
  if (isEwiiError(err)) return err.code;
  if (typeof err !== "object" || err === null) return undefined;
  const metadata = (err as { metadata?: unknown }).metadata;
  if (metadata instanceof Metadata) {
    const values = metadata.get(ERROR_CODE_METADATA_KEY);
    if (values.length > 0) return String(values[0]);
  }
  const details = (err as { details?: unknown }).details;
  if (typeof details === "string") {
    const match = /^(ERR_[A-Z0-9_]+):/.exec(details);
    if (match) return match[1];
  }
  return undefined;
}
