import { status } from "@grpc/grpc-js";
import { EwiiError } from "../../core/errors.js";
import { Row } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import type { Value } from "../../../gen/ewii/tunnel/v1/tunnel.js";

/**
 * Runs approved SQL against one dataset. Implementations bind parameters
 * through the driver and read inside a read-only connection or
 * transaction. They stop with one of these domain errors:
 *   ERR_QUERY_ROW_CAP, ERR_QUERY_BYTE_CAP, ERR_QUERY_TIMEOUT,
 *   ERR_QUERY_CANCELLED (the signal aborted), ERR_QUERY_FAILED (the
 *   driver failed; the message has the driver's error class only).
 * Rows already handed to the sink before an error stay sent.
 */
export interface DatasetExecutor {
  run(request: ExecutionRequest, sink: ResultSink): Promise<ExecutionResult>;
  /** Stops workers and connections; running statements are cancelled. */
  close(): Promise<void>;
}

export interface ExecutionRequest {
  /** The customer's local SQL text with `:name` placeholders. */
  sql: string;
  /** Parameter values in declared order; names match the placeholders. */
  params: Array<{ name: string; value: Value }>;
  maxRows: number;
  /** Cap on the sum of the encoded row sizes (see `encodedRowLength`). */
  maxBytes: number;
  timeoutMs: number;
  signal: AbortSignal;
}

export interface ResultSink {
  /** Called once, before any rows, with column names and type names ("integer", "real", "text", "blob", "boolean" or ""). */
  columns(names: string[], types: string[]): Promise<void> | void;
  /**
   * Called with each batch of rows, each as its protobuf encoding
   * (ewii.tunnel.v1.Row); the executor waits for the returned promise
   * before reading on.
   */
  rows(batch: Uint8Array[]): Promise<void>;
}

export interface ExecutionResult {
  rowCount: number;
  /** Sum of the encoded row sizes. */
  byteCount: number;
}

/** Rows read from the driver before each hand-off to the sink. */
export const EXECUTOR_BATCH_ROWS = 100;

/** Returns the size of a row's protobuf encoding, the unit of byte caps and of `byte_count`. */
export function encodedRowLength(row: Row): number {
  return Row.encode(row).finish().length;
}

/**
 * Counts rows and bytes against the caps of one execution. `add` takes a
 * row's encoded length and throws the cap error at the first row that
 * would pass a cap, before that row is sent.
 */
export class CapCounter {
  rowCount = 0;
  byteCount = 0;

  constructor(
    private readonly maxRows: number,
    private readonly maxBytes: number,
  ) {}

  add(length: number): void {
    if (this.rowCount + 1 > this.maxRows) throw rowCapError(this.maxRows);
    if (this.byteCount + length > this.maxBytes) throw byteCapError(this.maxBytes);
    this.rowCount += 1;
    this.byteCount += length;
  }
}

export function rowCapError(maxRows: number): EwiiError {
  return new EwiiError("ERR_QUERY_ROW_CAP", `the result has more than ${maxRows} rows, the row cap; narrow the query or raise max_rows in the client configuration`, {
    status: status.RESOURCE_EXHAUSTED,
    details: { max_rows: maxRows },
  });
}

export function byteCapError(maxBytes: number): EwiiError {
  return new EwiiError("ERR_QUERY_BYTE_CAP", `the result is larger than ${maxBytes} bytes, the byte cap; narrow the query or raise max_bytes in the client configuration`, {
    status: status.RESOURCE_EXHAUSTED,
    details: { max_bytes: maxBytes },
  });
}

export function timeoutError(timeoutMs: number): EwiiError {
  return new EwiiError("ERR_QUERY_TIMEOUT", `the statement ran longer than ${timeoutMs} ms and was stopped; narrow the query or raise statement_timeout_ms in the client configuration`, {
    status: status.DEADLINE_EXCEEDED,
    details: { timeout_ms: timeoutMs },
  });
}

export function cancelledError(): EwiiError {
  return new EwiiError("ERR_QUERY_CANCELLED", "the query was cancelled by the hub or because its session closed", { status: status.CANCELLED });
}

/**
 * Driver failure. `errorClass` is the driver's error code (an SQLSTATE or a
 * SQLite result code name). The driver's message is neither kept nor
 * logged, because it can echo parameter values.
 */
export function queryFailedError(errorClass: string): EwiiError {
  return new EwiiError("ERR_QUERY_FAILED", `the database failed the statement with error class ${errorClass}; check the approved SQL and the dataset`, {
    status: status.FAILED_PRECONDITION,
    details: { error_class: errorClass },
  });
}
