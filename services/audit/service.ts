/**
 * The AuditService RPC handlers. Hubs append; operator administrators
 * query, tail and verify. Callers are authorized by the SPIFFE ID of their
 * verified client certificate.
 */
import { status } from "@grpc/grpc-js";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { AppendRequest, AppendResponse, AppendStreamRequest, AppendStreamResponse, AuditRecord, AuditServiceServer, ListSinksRequest, ListSinksResponse, QueryRequest, QueryResponse, TailRequest, TailResponse, VerifyRequest, VerifyResponse } from "../../gen/ewii/audit/v1/audit.js";
import { EwiiError, isEwiiError } from "../core/errors.js";
import type { PeerIdentity, RpcContext, RpcEdge, ServerStreamContext } from "../core/grpc/index.js";
import type { Logger } from "../core/log.js";
import { LogField } from "../core/log.js";
import { AuditErrorCode, recordInvalid } from "./errors.js";
import type { SinkStatus } from "./export/exporter.js";
import type { AuditLog, AuditRecordInput } from "./log.js";
import { queryAuditLog, tailAuditLog } from "./query.js";
import { verifyAuditLog } from "./verify.js";

/** SPIFFE ID path prefix of the operator's administrators. */
export const ADMIN_PATH_PREFIX = "/admin/";

export interface AuditServiceOptions {
  log: AuditLog;
  operatorTrustDomain: string;
  /** SPIFFE IDs allowed to append; an entry ending in "/" allows every ID under it. */
  appenders: readonly string[];
  logger: Logger;
  /** Checks client result signatures during Verify; without it they are counted as unchecked. */
  verifyClientSignature?: (record: AuditRecord) => boolean;
  /** Returns the status of the SIEM export sinks; none when omitted. */
  sinkStatus?: () => SinkStatus[];
  /** Called once when the log stops accepting writes, for example to report NOT_SERVING. */
  onUnavailable?: () => void;
}

export class AuditService {
  private unavailableReported = false;
  /** Aborted by `stopAppendStreams`, which ends every open append stream. */
  private readonly stopping = new AbortController();

  constructor(private readonly options: AuditServiceOptions) {}

  implementation(rpc: RpcEdge): AuditServiceServer {
    return {
      append: rpc.unary((req: AppendRequest, ctx) => this.append(req, ctx)),
      appendStream: rpc.bidiStream((call: ServerDuplexStream<AppendStreamRequest, AppendStreamResponse>, ctx) => this.appendStream(call, ctx)),
      query: rpc.unary((req: QueryRequest, ctx) => this.query(req, ctx)),
      tail: rpc.serverStream((req: TailRequest, ctx: ServerStreamContext<TailResponse>) => this.tail(req, ctx)),
      verify: rpc.unary((req: VerifyRequest, ctx) => this.verify(req, ctx)),
      listSinks: rpc.unary((req: ListSinksRequest, ctx) => this.listSinks(req, ctx)),
    };
  }

  async append(req: AppendRequest, ctx: RpcContext): Promise<AppendResponse> {
    this.requireAppender(ctx.peer, ctx.method);
    const sequences = await this.store(req.records, ctx.logger);
    return { sequences };
  }

  /**
   * Stores each batch as it arrives, without waiting for the previous one,
   * so that batches from one stream share the log's group commits. A
   * failed batch gets a response with its error, and the stream stays open.
   * After the client half-closes, the batches still being stored are
   * acknowledged before the stream ends.
   */
  async appendStream(call: ServerDuplexStream<AppendStreamRequest, AppendStreamResponse>, ctx: RpcContext): Promise<void> {
    this.requireAppender(ctx.peer, ctx.method);
    ctx.logger.info("audit append stream opened");
    const inFlight = new Set<Promise<void>>();
    // The default iterator destroys the stream when the client half-closes,
    // which would drop the responses still to come and the final status.
    const requests = (call.iterator({ destroyOnReturn: false }) as AsyncIterable<AppendStreamRequest>)[Symbol.asyncIterator]();
    const stopped = new Promise<IteratorResult<AppendStreamRequest>>((resolve) => {
      if (this.stopping.signal.aborted) resolve({ done: true, value: undefined });
      this.stopping.signal.addEventListener("abort", () => resolve({ done: true, value: undefined }), { once: true });
    });
    for (;;) {
      const next = await Promise.race([requests.next(), stopped]);
      if (next.done === true) break;
      const batch = this.storeBatch(next.value, call, ctx.logger).finally(() => inFlight.delete(batch));
      inFlight.add(batch);
    }
    await Promise.all(inFlight);
    if (this.stopping.signal.aborted) ctx.logger.info("audit append stream ended because the service is stopping");
  }

  /**
   * Ends every open append stream once its batches in flight are
   * acknowledged, so that the server can stop without waiting for hubs to
   * close their streams. Batches sent after this get no acknowledgement,
   * and the hubs fail them.
   */
  stopAppendStreams(): void {
    this.stopping.abort();
  }

  private async storeBatch(req: AppendStreamRequest, call: ServerDuplexStream<AppendStreamRequest, AppendStreamResponse>, logger: Logger): Promise<void> {
    let response: AppendStreamResponse;
    try {
      response = { batchId: req.batchId, sequences: await this.store(req.records, logger), errorCode: "", errorMessage: "" };
    } catch (err: unknown) {
      const error = isEwiiError(err) ? err : new EwiiError(AuditErrorCode.logUnavailable, "the audit log could not store the batch; the audit service log has the cause", { status: status.UNAVAILABLE, cause: err });
      logger.warn("audit batch not stored", { [LogField.errorCode]: error.code, [LogField.cause]: error.message, batch_id: req.batchId.toString(10) });
      response = { batchId: req.batchId, sequences: [], errorCode: error.code, errorMessage: error.message };
    }
    if (!call.writableEnded && !call.cancelled && !call.destroyed) call.write(response);
  }

  /** Validates and durably appends records; returns their sequences in order. */
  private async store(records: AuditRecord[], logger: Logger): Promise<bigint[]> {
    if (records.length === 0) throw recordInvalid("the request contains no records; send at least one");
    const inputs = records.map((record, i) => toInput(record, i));
    try {
      const stored = await this.options.log.append(inputs);
      logger.debug("audit records appended", { count: stored.length, [LogField.sequence]: stored[stored.length - 1].sequence.toString(10) });
      return stored.map((record) => record.sequence);
    } catch (err: unknown) {
      if (isEwiiError(err) && err.code === AuditErrorCode.logUnavailable && !this.unavailableReported) {
        this.unavailableReported = true;
        this.options.onUnavailable?.();
      }
      throw err;
    }
  }

  async query(req: QueryRequest, ctx: RpcContext): Promise<QueryResponse> {
    this.requireAdmin(ctx.peer, ctx.method);
    const records = await queryAuditLog(this.options.log, {
      tenant: req.tenant,
      principal: req.principal,
      client: req.client,
      decision: req.decision,
      fromTime: req.fromTime,
      toTime: req.toTime,
      afterSequence: req.afterSequence,
      limit: req.limit,
    });
    return { records };
  }

  async tail(req: TailRequest, ctx: ServerStreamContext<TailResponse>): Promise<void> {
    this.requireAdmin(ctx.peer, ctx.method);
    ctx.logger.info("audit tail started", { after_sequence: req.afterSequence.toString(10) });
    for await (const record of tailAuditLog(this.options.log, { afterSequence: req.afterSequence, signal: ctx.signal })) {
      await ctx.write({ record });
    }
  }

  async verify(req: VerifyRequest, ctx: RpcContext): Promise<VerifyResponse> {
    this.requireAdmin(ctx.peer, ctx.method);
    const log = this.options.log;
    // The head is read before the files, so every entry it covers is on disk.
    const result = await verifyAuditLog(log.dir, {
      from: req.fromSequence,
      to: req.toSequence,
      publicKey: log.publicKey,
      anchor: log.head,
      ...(this.options.verifyClientSignature === undefined ? {} : { verifyClientSignature: this.options.verifyClientSignature }),
    });
    const level = result.ok ? "info" : "error";
    ctx.logger.log(level, result.ok ? "audit log verified" : "audit log verification found a problem", {
      checked: result.checked,
      problem: result.problem,
      first_bad_sequence: result.firstBadSequence?.toString(10),
      client_signatures_unchecked: result.clientSignaturesUnchecked,
    });
    return {
      ok: result.ok,
      checked: BigInt(result.checked),
      firstBadSequence: result.firstBadSequence ?? 0n,
      problem: result.problem ?? "",
      detail: result.detail,
    };
  }

  listSinks(_req: ListSinksRequest, ctx: RpcContext): Promise<ListSinksResponse> {
    this.requireAdmin(ctx.peer, ctx.method);
    const sinks = (this.options.sinkStatus?.() ?? []).map((sink) => ({
      name: sink.name,
      type: sink.type,
      target: sink.target,
      state: sink.state,
      stateSince: sink.stateSince,
      sentSequence: sink.sentSequence,
      persistedSequence: sink.persistedSequence,
      headSequence: sink.headSequence,
      lagEntries: sink.lagEntries,
      oldestUnsentAgeMs: BigInt(sink.oldestUnsentAgeMs),
      lastError: sink.lastError,
    }));
    return Promise.resolve({ sinks });
  }

  private requireAppender(peer: PeerIdentity | undefined, method: string): void {
    const allowed = peer !== undefined && this.options.appenders.some((entry) => (entry.endsWith("/") ? peer.spiffeId.startsWith(entry) : peer.spiffeId === entry));
    if (!allowed) {
      throw new EwiiError(AuditErrorCode.notAppender, `${peer?.spiffeId ?? "an anonymous caller"} may not call ${method}; only the configured appenders (hubs) may append`, { status: status.PERMISSION_DENIED });
    }
  }

  private requireAdmin(peer: PeerIdentity | undefined, method: string): void {
    const allowed = peer !== undefined && peer.trustDomain === this.options.operatorTrustDomain && peer.path.startsWith(ADMIN_PATH_PREFIX);
    if (!allowed) {
      throw new EwiiError(
        AuditErrorCode.notAdmin,
        `${peer?.spiffeId ?? "an anonymous caller"} may not call ${method}; use an SVID of spiffe://${this.options.operatorTrustDomain}${ADMIN_PATH_PREFIX}...`,
        { status: status.PERMISSION_DENIED },
      );
    }
  }
}

/**
 * Turns a wire record into log input. The service-set fields (sequence,
 * time, hashes) are ignored. A caller-set params_digest is rejected because
 * only the audit service has the params key.
 */
function toInput(record: AuditRecord, index: number): AuditRecordInput {
  if (record.paramsDigest !== "") {
    throw recordInvalid(`record ${index}: params_digest is set by the audit service; send the parameters as a JSON object in params_raw_json`);
  }
  const { sequence: _sequence, time: _time, previousHash: _previousHash, hash: _hash, paramsDigest: _digest, ...input } = record;
  return input;
}
