import { status } from "@grpc/grpc-js";
import { EwiiError, asError, isEwiiError } from "../../core/errors.js";
import { LogField } from "../../core/log.js";
import type { Logger } from "../../core/log.js";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { SessionMessage } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import type { QueryRequest, ResultSummary } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import type { ClientConfig } from "../config.js";
import { buildLocalCatalog, createExecutor } from "./catalog.js";
import type { ApprovedQuery, LocalDataset } from "./catalog.js";
import type { DatasetExecutor } from "./executor.js";
import { validateParams } from "./params.js";
import { SeenRequestIds } from "./request-ids.js";
import { RowDigest, STATUS_OK, canonicalSummaryBytes, paramsSha256 } from "./summary.js";

/**
 * Runs hub query requests against the customer's allow-list and streams
 * the result: one ResultColumns, RowChunk batches, then a ResultSummary
 * signed with the client's SVID key. A refused or failed request gets only
 * a signed summary whose status is the error code (rows already streamed
 * before a cap or timeout stay sent, and the summary counts them).
 */

/** A RowChunk is sent once it contains this many rows... */
export const CHUNK_MAX_ROWS = 500;
/** ...or this many bytes of encoded rows, whichever comes first. */
export const CHUNK_MAX_BYTES = 64 * 1024;
/**
 * Request ids are remembered at least this long after receipt.
 * NOTE: a request without a deadline could run again if replayed after this window and a client restart clears the set too; the hub should always send a deadline.
 */
export const REQUEST_ID_RETENTION_MS = 60 * 60 * 1000;
/** Deadlines further ahead than this are rejected, so ids never need keeping longer. */
export const MAX_REQUEST_DEADLINE_AHEAD_MS = 24 * 60 * 60 * 1000;
/** Remembered request ids; past this, new requests are rejected until old ids expire. */
export const MAX_REMEMBERED_REQUEST_IDS = 200_000;

const REQUEST_ID_BYTES = 16;
const PARAMS_SALT_BYTES = 32;
const HEX_SHA256 = /^[0-9a-f]{64}$/;

/** The client's SVID signing key: ECDSA P-256, SHA-256, DER signature. */
export interface SummarySigner {
  sign(data: Buffer): Buffer;
  /** Serial of the signing SVID, lowercase hex. */
  serial: string;
}

export interface ResultOutput {
  send(message: SessionMessage): Promise<void>;
  /** Sends an already-encoded SessionMessage; when absent, the handler decodes and calls `send`. */
  sendEncoded?(plaintext: Uint8Array): Promise<void>;
}

export interface QueryHandlerOptions {
  config: ClientConfig;
  signer: SummarySigner;
  logger: Logger;
  now?: () => Date;
  /** Executors by dataset name; datasets without one get the engine's default. */
  executors?: ReadonlyMap<string, DatasetExecutor>;
}

export class QueryHandler {
  private readonly datasets: Map<string, LocalDataset>;
  private readonly executors = new Map<string, DatasetExecutor>();
  private readonly seen: SeenRequestIds;
  private readonly signer: SummarySigner;
  private readonly logger: Logger;
  private readonly now: () => Date;

  constructor(options: QueryHandlerOptions) {
    this.signer = options.signer;
    this.logger = options.logger;
    this.now = options.now ?? (() => new Date());
    this.datasets = buildLocalCatalog(options.config);
    for (const dataset of this.datasets.values()) {
      this.executors.set(dataset.name, options.executors?.get(dataset.name) ?? createExecutor(dataset));
    }
    this.seen = new SeenRequestIds({
      retentionMs: REQUEST_ID_RETENTION_MS,
      maxRetentionMs: MAX_REQUEST_DEADLINE_AHEAD_MS,
      maxEntries: MAX_REMEMBERED_REQUEST_IDS,
      now: this.now,
    });
  }

  /**
   * Checks and runs one request, sending its messages to `out`. Resolves
   * once the summary is sent; rejects only when `out.send` fails, because
   * every other failure is reported in the signed summary.
   */
  async handle(request: QueryRequest, out: ResultOutput, signal: AbortSignal): Promise<void> {
    const startedMs = this.now().getTime();
    const requestIdHex = Buffer.from(request.requestId).toString("hex");
    const log = this.logger.child({ [LogField.requestId]: requestIdHex, dataset: request.dataset, query_id: request.queryId, [LogField.callerSpiffeId]: request.callerSpiffeId });
    const progress = { digest: new RowDigest(), sqlSha256: HEX_SHA256.test(request.sqlSha256) ? request.sqlSha256 : "" };

    let outcome: { status: string; message: string };
    try {
      const { dataset, query } = this.admit(request, requestIdHex, startedMs, progress);
      log.info("query started");
      await this.execute(request, dataset, query, out, signal, progress, startedMs);
      outcome = { status: STATUS_OK, message: "" };
    } catch (err) {
      if (!isEwiiError(err)) {
        // An unexpected failure is logged with its cause, and the hub receives only a generic code.
        log.error("query failed with an unexpected error", { [LogField.cause]: asError(err).message });
        outcome = { status: "ERR_INTERNAL", message: "internal error in the client; the client log has the cause" };
      } else {
        outcome = { status: err.code, message: err.message };
      }
    }

    const summary = this.sign({
      requestId: request.requestId,
      status: outcome.status,
      message: outcome.message,
      rowCount: progress.digest.rowCount,
      byteCount: progress.digest.byteCount,
      rowsSha256: progress.digest.digestHex(),
      sqlSha256: progress.sqlSha256,
      paramsSha256: paramsSha256(request.params, request.paramsSalt),
      signature: Buffer.alloc(0),
      signerSerial: this.signer.serial,
      elapsedMs: Math.max(0, Math.min(0xffffffff, this.now().getTime() - startedMs)),
    });
    const fields = { status: summary.status, row_count: Number(summary.rowCount), byte_count: Number(summary.byteCount), elapsed_ms: summary.elapsedMs };
    if (outcome.status === STATUS_OK) log.info("query finished", fields);
    else log.warn("query rejected or failed", { ...fields, [LogField.errorCode]: outcome.status });
    await out.send({ summary });
  }

  /** Stops every executor; running statements are cancelled. */
  async close(): Promise<void> {
    await Promise.all([...this.executors.values()].map((executor) => executor.close()));
  }

  /** Applies the allow-list and the request checks, in the order a refusal reports them. */
  private admit(request: QueryRequest, requestIdHex: string, nowMs: number, progress: { sqlSha256: string }): { dataset: LocalDataset; query: ApprovedQuery } {
    if (request.requestId.length !== REQUEST_ID_BYTES) {
      throw new EwiiError("ERR_QUERY_REQUEST_INVALID", `request_id must be ${REQUEST_ID_BYTES} bytes, got ${request.requestId.length}`, { status: status.INVALID_ARGUMENT });
    }
    if (request.paramsSalt.length !== PARAMS_SALT_BYTES) {
      throw new EwiiError("ERR_QUERY_REQUEST_INVALID", `params_salt must be ${PARAMS_SALT_BYTES} random bytes, got ${request.paramsSalt.length}`, { status: status.INVALID_ARGUMENT });
    }
    const deadlineMs = Number(request.deadlineUnixMs);
    if (deadlineMs > nowMs + MAX_REQUEST_DEADLINE_AHEAD_MS) {
      throw new EwiiError("ERR_QUERY_REQUEST_INVALID", `deadline_unix_ms is more than ${MAX_REQUEST_DEADLINE_AHEAD_MS} ms ahead of the client clock; send a nearer deadline`, {
        status: status.INVALID_ARGUMENT,
      });
    }
    // Claimed before any other check, so a request id is spent even when the request is refused.
    this.seen.claim(requestIdHex, deadlineMs);

    const dataset = this.datasets.get(request.dataset);
    if (dataset === undefined) {
      throw new EwiiError("ERR_DATASET_UNKNOWN", `dataset ${JSON.stringify(request.dataset)} is not configured on this client; configured datasets: ${[...this.datasets.keys()].join(", ")}`, {
        status: status.NOT_FOUND,
      });
    }
    const query = dataset.queries.get(request.queryId);
    if (query === undefined) {
      throw new EwiiError("ERR_QUERY_UNKNOWN", `query ${JSON.stringify(request.queryId)} is not approved for dataset ${dataset.name} in the client configuration; the customer must add it to the client's allow-list`, {
        status: status.NOT_FOUND,
      });
    }
    // From here on the summary carries the local hash, including in a mismatch refusal.
    progress.sqlSha256 = query.sqlSha256;
    const requested = request.sqlSha256ByEngine[dataset.config.engine] ?? request.sqlSha256;
    if (requested !== query.sqlSha256) {
      const received = HEX_SHA256.test(requested) ? requested : "(not a SHA-256 hex digest)";
      throw new EwiiError(
        "ERR_QUERY_SQL_MISMATCH",
        `query ${query.id} has ${dataset.config.engine} SQL hash ${query.sqlSha256} on the client but the request carries ${received}; make the policy catalog and the client's approved SQL identical`,
        { status: status.FAILED_PRECONDITION },
      );
    }
    if (deadlineMs !== 0 && deadlineMs <= nowMs) {
      throw new EwiiError("ERR_QUERY_TIMEOUT", `the request's deadline passed ${nowMs - deadlineMs} ms before it reached the client`, { status: status.DEADLINE_EXCEEDED });
    }
    return { dataset, query };
  }

  private async execute(
    request: QueryRequest,
    dataset: LocalDataset,
    query: ApprovedQuery,
    out: ResultOutput,
    signal: AbortSignal,
    progress: { digest: RowDigest },
    startedMs: number,
  ): Promise<void> {
    const params = validateParams(query, request.params);
    const executor = this.executors.get(dataset.name);
    if (executor === undefined) throw new TypeError(`no executor for dataset ${dataset.name}`);

    const maxRows = request.maxRows > 0 ? Math.min(request.maxRows, query.maxRows) : query.maxRows;
    const deadlineMs = Number(request.deadlineUnixMs);
    const timeoutMs = deadlineMs === 0 ? dataset.config.statement_timeout_ms : Math.max(1, Math.min(dataset.config.statement_timeout_ms, deadlineMs - startedMs));

    // The executor hands over encoded rows: the same bytes feed the digest and the RowChunk.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    // The columns wait for the first row chunk or the end of the result, so
    // that a small result leaves in one turn of the event loop and reaches
    // the relay and the hub as one network write.
    let columns: SessionMessage | undefined;
    const flush = async (): Promise<void> => {
      if (columns !== undefined) {
        const message = columns;
        columns = undefined;
        await out.send(message);
      }
      if (pending.length === 0) return;
      const plaintext = encodeRowChunkMessage(request.requestId, pending);
      pending = [];
      pendingBytes = 0;
      if (out.sendEncoded !== undefined) await out.sendEncoded(plaintext);
      else await out.send(SessionMessage.decode(plaintext));
    };

    await executor.run(
      { sql: query.sql, params, maxRows, maxBytes: dataset.config.max_bytes, timeoutMs, signal },
      {
        columns: (names, types) => {
          columns = { columns: { requestId: request.requestId, names, types } };
        },
        rows: async (batch) => {
          for (const encoded of batch) {
            pendingBytes += progress.digest.updateEncoded(encoded);
            pending.push(encoded);
            if (pending.length >= CHUNK_MAX_ROWS || pendingBytes >= CHUNK_MAX_BYTES) await flush();
          }
        },
      },
    )
      .catch((err: unknown) => {
        throw maxRows < query.maxRows && isEwiiError(err) && err.code === "ERR_QUERY_ROW_CAP" ? operatorRowCapError(maxRows) : err;
      })
      .finally(flush);
  }

  private sign(summary: ResultSummary): ResultSummary {
    return { ...summary, signature: this.signer.sign(canonicalSummaryBytes(summary)) };
  }
}

/** Reports a row cap that the hub set from the operator's policy, lower than the client's own. */
function operatorRowCapError(maxRows: number): EwiiError {
  return new EwiiError("ERR_QUERY_ROW_CAP", `the result has more than ${maxRows} rows, the row cap the operator's policy sets for this query; narrow the query or raise max_rows in the policy rule or catalog`, {
    status: status.RESOURCE_EXHAUSTED,
    details: { max_rows: maxRows },
  });
}

/** Field numbers of SessionMessage.rows, RowChunk.request_id and RowChunk.rows (tunnel.proto). */
const SESSION_MESSAGE_ROWS_FIELD = 3;
const ROW_CHUNK_REQUEST_ID_FIELD = 1;
const ROW_CHUNK_ROWS_FIELD = 2;

/**
 * Encodes SessionMessage{rows: RowChunk{request_id, rows}} from rows that
 * are already encoded. The bytes equal SessionMessage.encode of the decoded
 * rows, because ts-proto writes a nested message as its own encoding
 * behind a length prefix.
 */
function encodeRowChunkMessage(requestId: Uint8Array, encodedRows: Uint8Array[]): Uint8Array {
  const writer = new BinaryWriter();
  writer.tag(SESSION_MESSAGE_ROWS_FIELD, WireType.LengthDelimited).fork();
  if (requestId.length > 0) writer.tag(ROW_CHUNK_REQUEST_ID_FIELD, WireType.LengthDelimited).bytes(requestId);
  for (const encoded of encodedRows) writer.tag(ROW_CHUNK_ROWS_FIELD, WireType.LengthDelimited).bytes(encoded);
  writer.join();
  return writer.finish();
}
