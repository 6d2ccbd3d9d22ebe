import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { status } from "@grpc/grpc-js";
import { fileURLToPath } from "node:url";
import { EwiiError } from "../../core/errors.js";
import { byteCapError, cancelledError, queryFailedError, rowCapError, timeoutError } from "./executor.js";
import type { DatasetExecutor, ExecutionRequest, ExecutionResult, ResultSink } from "./executor.js";
import { sqliteBindValue } from "./values.js";
import type { SqliteBindValue } from "./values.js";
import { SQLITE_NOT_READ_ONLY_CODE } from "./sqlite-protocol.js";
import type { SqliteChildEvent, SqliteParentMessage, SqliteRunMessage } from "./sqlite-protocol.js";

/**
 * SQLite executor. Each statement runs in a child process that opened the
 * file read-only (`readonly: true, fileMustExist: true`, then
 * `PRAGMA query_only = ON`), and runs only statements that return rows and
 * that SQLite reports as read-only (ERR_QUERY_NOT_READ_ONLY otherwise).
 * Parameters are bound by better-sqlite3 by name (`:name` in the SQL).
 * better-sqlite3 12 exposes neither a progress handler
 * nor sqlite3_interrupt. `Worker.terminate()` does not stop a thread inside
 * sqlite3_step either: a recursive CTE kept its worker thread busy after
 * terminate. So on timeout or abort the executor kills the child process
 * with SIGKILL and starts a fresh one for the next query.
 */

/** Child processes per dataset; further queries wait for a free one. */
export const MAX_SQLITE_CHILDREN_PER_DATASET = 4;

/**
 * Starts a child process running sqlite-child. Run from TypeScript sources
 * (tests, or `ewii` through tsx), the child is the .ts file and inherits
 * the parent's tsx loader flags through `process.execArgv`. A build runs
 * the .js file.
 */
function startChildProcess(): ChildProcess {
  const script = fileURLToPath(new URL(import.meta.url.endsWith(".ts") ? "./sqlite-child.ts" : "./sqlite-child.js", import.meta.url));
  return fork(script, [], { serialization: "advanced", stdio: ["ignore", "ignore", "inherit", "ipc"] });
}

export class SqliteExecutor implements DatasetExecutor {
  private readonly idle: SqliteChild[] = [];
  private readonly all = new Set<SqliteChild>();
  private readonly waiting: Array<(child: SqliteChild) => void> = [];
  private closed = false;
  private started = 0;

  /** `path` is the absolute path of the database file. */
  constructor(private readonly path: string) {}

  async run(request: ExecutionRequest, sink: ResultSink): Promise<ExecutionResult> {
    if (request.signal.aborted) throw cancelledError();
    const child = await this.acquire();
    if (request.signal.aborted) {
      this.release(child);
      throw cancelledError();
    }
    try {
      await child.ready;
    } catch (err) {
      this.discard(child);
      throw err;
    }

    const params: Record<string, SqliteBindValue> = {};
    for (const { name, value } of request.params) params[name] = sqliteBindValue(value);

    try {
      const result = await child.run({ sql: request.sql, params, maxRows: request.maxRows, maxBytes: request.maxBytes }, request, sink);
      this.release(child);
      return result;
    } catch (err) {
      if (child.usable) this.release(child);
      else this.discard(child);
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.all].map((child) => child.terminate()));
    this.all.clear();
    this.idle.length = 0;
  }

  private async acquire(): Promise<SqliteChild> {
    if (this.closed) throw new EwiiError("ERR_CLIENT_CLOSED", "the client is shutting down; retry on another client");
    const idle = this.idle.pop();
    if (idle !== undefined) return idle;
    if (this.all.size < MAX_SQLITE_CHILDREN_PER_DATASET) return this.spawn();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Child processes started so far, including replacements of killed ones. */
  get processesStarted(): number {
    return this.started;
  }

  private spawn(): SqliteChild {
    this.started += 1;
    const child = new SqliteChild(this.path);
    this.all.add(child);
    return child;
  }

  private release(child: SqliteChild): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(child);
    else this.idle.push(child);
  }

  private discard(child: SqliteChild): void {
    this.all.delete(child);
    void child.terminate();
    const next = this.waiting.shift();
    if (next !== undefined && !this.closed) next(this.spawn());
  }
}

type StatementMessage = Omit<SqliteRunMessage, "type">;

/** One child process and the run in progress on it. */
class SqliteChild {
  readonly ready: Promise<void>;
  /** False once the process was killed or exited; such a child is discarded. */
  usable = true;
  private readonly child: ChildProcess;
  private onEvent: ((event: SqliteChildEvent) => void) | undefined;
  private onExit: ((err: EwiiError) => void) | undefined;
  private readonly exitedPromise: Promise<void>;

  constructor(path: string) {
    this.child = startChildProcess();
    this.exitedPromise = new Promise((resolve) => this.child.once("exit", () => resolve()));
    this.ready = new Promise((resolve, reject) => {
      this.onEvent = (event) => {
        if (event.type === "ready") resolve();
        else reject(queryFailedError(event.type === "error" ? (event.errorClass ?? "SQLITE_CANTOPEN") : "SQLITE_CANTOPEN"));
      };
      this.onExit = reject;
    });
    // run() awaits the ready promise; this handler only keeps an early failure from being reported as unhandled.
    this.ready.catch(() => undefined);
    this.child.on("message", (event: SqliteChildEvent) => this.onEvent?.(event));
    this.child.on("error", () => this.exited());
    this.child.on("exit", () => this.exited());
    this.send({ type: "open", path });
  }

  run(message: StatementMessage, request: ExecutionRequest, sink: ResultSink): Promise<ExecutionResult> {
    return new Promise<ExecutionResult>((resolve, reject) => {
      let settled = false;
      let chain: Promise<void> = Promise.resolve();

      const finish = (outcome: { result: ExecutionResult } | { error: unknown }): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.signal.removeEventListener("abort", onAbort);
        this.onEvent = undefined;
        this.onExit = undefined;
        if ("result" in outcome) resolve(outcome.result);
        else reject(outcome.error);
      };
      const stop = (error: EwiiError): void => {
        void this.terminate();
        finish({ error });
      };
      const onAbort = (): void => stop(cancelledError());
      const timer = setTimeout(() => stop(timeoutError(request.timeoutMs)), request.timeoutMs);
      request.signal.addEventListener("abort", onAbort, { once: true });
      // The signal may have fired while the child process was starting, before the listener existed.
      // Nothing runs on the child yet, so it stays usable.
      if (request.signal.aborted) {
        finish({ error: cancelledError() });
        return;
      }

      this.onExit = (error) => finish({ error });
      this.onEvent = (event) => {
        // Events are handled in order; a batch reaches the sink only after the previous one was accepted.
        chain = chain
          .then(async () => {
            if (settled) return;
            await this.handle(event, message, sink, (outcome) => finish(outcome));
          })
          .catch((err: unknown) => {
            if (settled) return;
            // A sink failure (for example a closed session) leaves the child waiting mid-statement.
            void this.terminate();
            finish({ error: err });
          });
      };
      this.send({ type: "run", ...message });
    });
  }

  /** Kills the process (SIGKILL, so native code cannot delay it) and waits for its exit. */
  async terminate(): Promise<void> {
    this.usable = false;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exitedPromise;
  }

  private send(message: SqliteParentMessage): void {
    if (!this.child.connected) return;
    this.child.send(message, (err) => {
      // A failed send means the child is gone; the exit handler reports it.
      if (err !== null) this.exited();
    });
  }

  /**
   * Handles one event of the running statement. `done` ends the run with the
   * child's result or with a row or byte cap error, after which the child is
   * reused because it finished a read-only statement.
   *
   * Any other error the child reports is thrown, so the child is killed.
   * Preparing a rejected statement can already change the connection, as
   * `PRAGMA query_only = OFF` does.
   */
  private async handle(event: SqliteChildEvent, message: StatementMessage, sink: ResultSink, done: (outcome: { result: ExecutionResult } | { error: EwiiError }) => void): Promise<void> {
    switch (event.type) {
      case "columns":
        await sink.columns(event.names, event.types);
        return;
      case "rows":
        await sink.rows(splitRows(event.encoded, event.lengths));
        this.send({ type: "ack" });
        return;
      case "done":
        done({ result: { rowCount: event.rowCount, byteCount: event.byteCount } });
        return;
      case "error":
        if (event.code === "ERR_QUERY_ROW_CAP" || event.code === "ERR_QUERY_BYTE_CAP") {
          done({ error: childError(event, message) });
          return;
        }
        throw childError(event, message);
      case "ready":
        return;
    }
  }

  private exited(): void {
    const wasUsable = this.usable;
    this.usable = false;
    if (wasUsable) this.onExit?.(queryFailedError("SQLITE_PROCESS_EXIT"));
  }
}

function childError(event: { code?: string; errorClass?: string }, message: StatementMessage): EwiiError {
  if (event.code === "ERR_QUERY_ROW_CAP") return rowCapError(message.maxRows);
  if (event.code === "ERR_QUERY_BYTE_CAP") return byteCapError(message.maxBytes);
  if (event.code === SQLITE_NOT_READ_ONLY_CODE) return notReadOnlyError();
  return queryFailedError(event.errorClass ?? event.code ?? "SQLITE_UNKNOWN");
}

function notReadOnlyError(): EwiiError {
  return new EwiiError(
    SQLITE_NOT_READ_ONLY_CODE,
    "the approved SQL is not a read-only query: SQLite reports that it returns no rows or can change the database or the connection (a write, ATTACH, a PRAGMA assignment, BEGIN, VACUUM); approve only SELECT statements in the client configuration",
    { status: status.FAILED_PRECONDITION },
  );
}

/** Cuts a batch buffer from the child into its rows' encodings, without copying. */
function splitRows(encoded: Uint8Array, lengths: number[]): Uint8Array[] {
  const rows: Uint8Array[] = new Array<Uint8Array>(lengths.length);
  let offset = 0;
  for (let i = 0; i < lengths.length; i++) {
    rows[i] = encoded.subarray(offset, offset + lengths[i]);
    offset += lengths[i];
  }
  if (offset !== encoded.length) throw new TypeError(`SQLite child sent ${encoded.length} row bytes but lengths adding up to ${offset}`);
  return rows;
}
