import type { SqliteBindValue } from "./values.js";

/** IPC messages between the SQLite executor and its child processes. */

/** Parent to child: open the database; sent once, first. */
export interface SqliteOpenMessage {
  type: "open";
  /** Absolute path of the database file. */
  path: string;
}

/** Parent to child: run one statement. */
export interface SqliteRunMessage {
  type: "run";
  sql: string;
  params: Record<string, SqliteBindValue>;
  maxRows: number;
  maxBytes: number;
}

/** Parent to child: the parent handed one more batch to its sink. */
export interface SqliteAckMessage {
  type: "ack";
}

export type SqliteParentMessage = SqliteOpenMessage | SqliteRunMessage | SqliteAckMessage;

/** Error code the child sends when a statement is not a read-only query. */
export const SQLITE_NOT_READ_ONLY_CODE = "ERR_QUERY_NOT_READ_ONLY";

/** Child to parent. An error carries either an ERR_ code (caps) or the SQLite error class. */
export type SqliteChildEvent =
  | { type: "ready" }
  | { type: "columns"; names: string[]; types: string[] }
  /** `encoded` contains the rows' protobuf encodings back to back, and `lengths` each one's length. */
  | { type: "rows"; encoded: Uint8Array; lengths: number[] }
  | { type: "done"; rowCount: number; byteCount: number }
  | { type: "error"; code?: string; errorClass?: string };
