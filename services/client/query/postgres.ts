import pg from "pg";
import Cursor from "pg-cursor";
import { status } from "@grpc/grpc-js";
import { Row } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import { EwiiError, isEwiiError } from "../../core/errors.js";
import { readQueryProblem } from "../../core/sql/read-query.js";
import { CapCounter, EXECUTOR_BATCH_ROWS, cancelledError, queryFailedError, timeoutError } from "./executor.js";
import type { DatasetExecutor, ExecutionRequest, ExecutionResult, ResultSink } from "./executor.js";
import { toPositional } from "../../core/sql/placeholders.js";
import type { PositionalSql } from "../../core/sql/placeholders.js";
import { PgOid, parsePgText, pgBindValue, pgColumnType, valueFromPg } from "./values.js";

/**
 * PostgreSQL executor. Each query runs on a pooled connection inside
 * `BEGIN READ ONLY` with a transaction-local `statement_timeout`, and only
 * SQL that starts as a read query runs (ERR_QUERY_NOT_READ_ONLY otherwise).
 * The catalog's `:name` placeholders are rewritten to positional `$n`
 * once, when the executor is built (rules in placeholders.ts). Rows stream
 * through a cursor, so a cap stops the read before the rest of the result
 * is fetched. On abort or timeout the executor asks the server to cancel
 * the backend (`pg_cancel_backend`) and discards the connection.
 */

/** Connections per dataset pool. */
export const POSTGRES_POOL_SIZE = 4;

/** SQLSTATE of query_canceled, raised by statement_timeout and by pg_cancel_backend. */
const SQLSTATE_QUERY_CANCELED = "57014";

const TYPES = {
  getTypeParser: (oid: number, format?: string) => {
    if (oid === PgOid.bytea || format === "binary") return pg.types.getTypeParser(oid, "text");
    return (text: string) => parsePgText(oid, text);
  },
};

export class PostgresExecutor implements DatasetExecutor {
  private readonly pool: pg.Pool;
  private readonly compiled = new Map<string, PositionalSql>();
  /** Approved SQL that does not start as a read query, with the reason from `readQueryProblem`. */
  private readonly rejected = new Map<string, string>();

  /**
   * `url` is the dataset's connection URL; `approvedSql` lists every SQL text
   * of the dataset's catalog, rewritten here once.
   */
  constructor(
    private readonly url: string,
    approvedSql: Iterable<string>,
  ) {
    for (const sql of approvedSql) {
      // pg-cursor 2.x does not handle the COPY protocol: COPY ... TO STDOUT threw
      // inside pg's socket handler and ended the client process. Such SQL
      // never reaches the server, even when a config skipped the loader.
      const problem = readQueryProblem(sql, "postgres");
      if (problem !== undefined) this.rejected.set(sql, problem);
      else this.compiled.set(sql, toPositional(sql));
    }
    this.pool = new pg.Pool({ connectionString: url, max: POSTGRES_POOL_SIZE, types: TYPES });
    // An idle pooled connection that fails is removed by pg; this handler keeps the error from crashing the process.
    this.pool.on("error", () => undefined);
  }

  async run(request: ExecutionRequest, sink: ResultSink): Promise<ExecutionResult> {
    const problem = this.rejected.get(request.sql);
    if (problem !== undefined) throw notReadQueryError(problem);
    const statement = this.compiled.get(request.sql);
    if (statement === undefined) throw new TypeError("PostgresExecutor.run: the SQL is not in the catalog the executor was built with");
    if (request.signal.aborted) throw cancelledError();

    const byName = new Map(request.params.map((p) => [p.name, p.value]));
    const values = statement.names.map((name) => {
      const value = byName.get(name);
      if (value === undefined) throw new TypeError(`PostgresExecutor.run: no value for parameter ${name}`);
      return pgBindValue(value);
    });

    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw queryFailedError(pgErrorClass(err));
    }

    const execution = new PgExecution(client, this.url);
    try {
      const result = await execution.run(statement.text, values, request, sink);
      client.release();
      return result;
    } catch (err) {
      // A connection that was cancelled or failed mid-transaction is not reused.
      client.release(true);
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** One query on one connection, with its stop reason. */
class PgExecution {
  private stopReason: EwiiError | undefined;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly url: string,
  ) {}

  async run(text: string, values: Array<string | Buffer | null>, request: ExecutionRequest, sink: ResultSink): Promise<ExecutionResult> {
    let rejectStop: (err: EwiiError) => void = () => undefined;
    const stopped = new Promise<never>((_, reject) => (rejectStop = reject));
    // The race below observes this promise; the handler only silences it when the query ends first.
    stopped.catch(() => undefined);
    const stop = (reason: EwiiError): void => {
      if (this.stopReason !== undefined) return;
      this.stopReason = reason;
      void this.cancelBackend();
      rejectStop(reason);
    };
    const onAbort = (): void => stop(cancelledError());
    const timer = setTimeout(() => stop(timeoutError(request.timeoutMs)), request.timeoutMs);
    request.signal.addEventListener("abort", onAbort, { once: true });
    // The signal may have fired while a pooled connection was awaited, before the listener existed.
    if (request.signal.aborted) onAbort();

    try {
      return await Promise.race([this.stream(text, values, request, sink), stopped]);
    } catch (err) {
      throw this.mapError(err, request.timeoutMs);
    } finally {
      clearTimeout(timer);
      request.signal.removeEventListener("abort", onAbort);
    }
  }

  private async stream(text: string, values: Array<string | Buffer | null>, request: ExecutionRequest, sink: ResultSink): Promise<ExecutionResult> {
    await this.client.query("BEGIN READ ONLY");
    await this.client.query("SELECT set_config('statement_timeout', $1, true)", [String(request.timeoutMs)]);

    const cursor = this.client.query(new Cursor(text, values, { rowMode: "array", types: TYPES }));
    const caps = new CapCounter(request.maxRows, request.maxBytes);
    let columnsSent = false;
    try {
      for (;;) {
        const { rows, fields } = await readBatch(cursor, EXECUTOR_BATCH_ROWS);
        if (this.stopReason !== undefined) throw this.stopReason;
        if (!columnsSent) {
          const columns = fields ?? [];
          await sink.columns(
            columns.map((f) => f.name),
            columns.map((f) => pgColumnType(f.dataTypeID)),
          );
          columnsSent = true;
        }
        if (rows.length === 0) break;
        const batch: Uint8Array[] = [];
        for (const raw of rows) {
          const encoded = Row.encode({ values: raw.map(valueFromPg) }).finish();
          try {
            caps.add(encoded.length);
          } catch (err: unknown) {
            // Every row before the one that passes a cap is sent, then the cap error.
            if (batch.length > 0) await sink.rows(batch);
            throw err;
          }
          batch.push(encoded);
        }
        await sink.rows(batch);
      }
    } finally {
      if (this.stopReason === undefined) await cursor.close().catch(() => undefined);
    }
    await this.client.query("COMMIT");
    return { rowCount: caps.rowCount, byteCount: caps.byteCount };
  }

  private mapError(err: unknown, timeoutMs: number): EwiiError {
    if (this.stopReason !== undefined) return this.stopReason;
    if (isEwiiError(err)) return err;
    const errorClass = pgErrorClass(err);
    if (errorClass === SQLSTATE_QUERY_CANCELED) return timeoutError(timeoutMs);
    return queryFailedError(errorClass);
  }

  /** Asks the server to cancel this connection's statement, from a separate short-lived connection. */
  private async cancelBackend(): Promise<void> {
    const pid = (this.client as pg.PoolClient & { processID?: number }).processID;
    if (pid === undefined) return;
    const canceller = new pg.Client({ connectionString: this.url });
    try {
      await canceller.connect();
      await canceller.query("SELECT pg_cancel_backend($1)", [pid]);
    } catch {
      // The connection is destroyed on release anyway; a failed cancel leaves the server to end the statement at statement_timeout.
    } finally {
      await canceller.end().catch(() => undefined);
    }
  }
}

function notReadQueryError(problem: string): EwiiError {
  return new EwiiError("ERR_QUERY_NOT_READ_ONLY", `the approved SQL is not a read-only query: ${problem}`, { status: status.FAILED_PRECONDITION });
}

/** Reads up to `count` rows; `fields` is undefined once the cursor is done (pg-cursor 2.22 passes no result then). */
function readBatch(cursor: Cursor, count: number): Promise<{ rows: unknown[][]; fields: pg.FieldDef[] | undefined }> {
  return new Promise((resolve, reject) => {
    cursor.read(count, (err, rows, result: pg.QueryResult | undefined) => {
      if (err) reject(err);
      else resolve({ rows: rows as unknown[][], fields: result?.fields });
    });
  });
}

/** Returns the SQLSTATE of a server error, the errno code of a connection error, or "PG_UNKNOWN". */
function pgErrorClass(err: unknown): string {
  if (typeof err === "object" && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z_]{1,32}$/.test(code)) return code;
  }
  return "PG_UNKNOWN";
}
