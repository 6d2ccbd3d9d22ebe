import Database from "better-sqlite3";
import type { Statement } from "better-sqlite3";
import { Row } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import { EwiiError, isEwiiError } from "../../core/errors.js";
import { CapCounter, EXECUTOR_BATCH_ROWS } from "./executor.js";
import { sqliteColumnType, valueFromSqlite } from "./values.js";
import type { SqliteBindValue } from "./values.js";
import { SQLITE_NOT_READ_ONLY_CODE } from "./sqlite-protocol.js";
import type { SqliteChildEvent, SqliteParentMessage, SqliteRunMessage } from "./sqlite-protocol.js";

/**
 * Child process that owns one read-only SQLite connection and runs one
 * statement at a time for the SQLite executor. better-sqlite3 runs a
 * statement synchronously inside native code, where neither a timer nor
 * `Worker.terminate()` can stop it, so the parent stops a slow statement by
 * killing this process. After posting a batch, the child waits until the
 * parent has acknowledged all but `SQLITE_UNACKED_BATCHES` batches, which
 * bounds the rows buffered in the parent. Rows are encoded here, so the
 * parent receives each batch as one buffer and never decodes the rows.
 */

export const SQLITE_UNACKED_BATCHES = 4;

if (process.send === undefined) throw new TypeError("sqlite-child.ts must run as a child process with an IPC channel");

let db: Database.Database | undefined;
const statements = new Map<string, Statement<Record<string, SqliteBindValue>>>();
let acked = 0;
let onAck: (() => void) | undefined;

function post(event: SqliteChildEvent): void {
  process.send?.(event);
}

process.on("message", (message: SqliteParentMessage) => {
  switch (message.type) {
    case "open":
      openDatabase(message.path);
      return;
    case "ack":
      acked += 1;
      onAck?.();
      return;
    case "run":
      runStatement(message).then(
        (result) => post({ type: "done", ...result }),
        (err: unknown) => post(isEwiiError(err) ? { type: "error", code: err.code } : { type: "error", errorClass: sqliteErrorClass(err) }),
      );
      return;
  }
});

// The parent's exit closes the IPC channel; nothing is left to serve.
process.on("disconnect", () => process.exit(0));

function openDatabase(path: string): void {
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma("query_only = ON");
    db.defaultSafeIntegers(true);
    post({ type: "ready" });
  } catch (err) {
    post({ type: "error", errorClass: sqliteErrorClass(err) });
  }
}

async function runStatement(message: SqliteRunMessage): Promise<{ rowCount: number; byteCount: number }> {
  if (db === undefined) throw new TypeError("run before a successful open");
  let statement = statements.get(message.sql);
  if (statement === undefined) {
    statement = db.prepare<Record<string, SqliteBindValue>>(message.sql);
    statements.set(message.sql, statement);
  }
  acked = 0;

  // A read-only file and query_only still let ATTACH open another file,
  // PRAGMA assignments and BEGIN change this reused connection, and VACUUM
  // INTO create a file before it fails. So only statements that return rows
  // and that sqlite3_stmt_readonly() reports as read-only ever run.
  if (!statement.reader || !statement.readonly) throw new EwiiError(SQLITE_NOT_READ_ONLY_CODE, "the statement is not a read-only query");

  const columns = statement.columns();
  post({ type: "columns", names: columns.map((c) => c.name), types: columns.map((c) => sqliteColumnType(c.type)) });

  const caps = new CapCounter(message.maxRows, message.maxBytes);
  let batch: Uint8Array[] = [];
  let batchesPosted = 0;
  const flush = async (): Promise<void> => {
    post({ type: "rows", encoded: Buffer.concat(batch), lengths: batch.map((encoded) => encoded.length) });
    batch = [];
    batchesPosted += 1;
    while (batchesPosted - acked > SQLITE_UNACKED_BATCHES) {
      await new Promise<void>((resolve) => (onAck = resolve));
    }
    onAck = undefined;
  };

  const iterator = statement.raw(true).iterate(message.params) as IterableIterator<unknown[]>;
  try {
    for (const raw of iterator) {
      const encoded = Row.encode({ values: raw.map(valueFromSqlite) }).finish();
      try {
        caps.add(encoded.length);
      } catch (err: unknown) {
        // Every row before the one that passes a cap is sent, then the cap error.
        if (batch.length > 0) await flush();
        throw err;
      }
      batch.push(encoded);
      if (batch.length >= EXECUTOR_BATCH_ROWS) await flush();
    }
  } finally {
    // Closes the statement's cursor when a cap stops the loop early.
    iterator.return?.();
  }
  if (batch.length > 0) await flush();
  return { rowCount: caps.rowCount, byteCount: caps.byteCount };
}

function sqliteErrorClass(err: unknown): string {
  if (err instanceof Database.SqliteError) return err.code;
  if (err instanceof RangeError || err instanceof TypeError) return "SQLITE_BIND";
  return "SQLITE_UNKNOWN";
}
