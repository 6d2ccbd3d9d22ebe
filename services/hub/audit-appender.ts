import type { ClientDuplexStream } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { AuditRecord, type AppendStreamRequest, type AppendStreamResponse, type AuditServiceClient } from "../../gen/ewii/audit/v1/audit.js";
import { AuditErrorCode } from "../audit/errors.js";
import { EwiiError, errorCodeOf } from "../core/errors.js";
import { LogField, type Logger } from "../core/log.js";
import type { AuditAppender } from "./ports.js";

/** Maximum records sent in one AppendStream batch. */
export const MAX_BATCH_RECORDS = 256;
/**
 * Maximum bytes of encoded records in one batch, and so in one append. It
 * stays well under the audit service's 4 MiB message limit: the largest
 * record the audit service accepts encodes to about 140 KiB.
 */
export const MAX_BATCH_BYTES = 1024 * 1024;
/** Upper bound on the tag and length prefix of one record inside a batch. */
const RECORD_FRAMING_BYTES = 6;

/** One `append` call waiting for its records' sequences. */
interface Waiter {
  records: AuditRecord[];
  bytes: number;
  resolve: (sequences: number[]) => void;
  reject: (error: Error) => void;
  settled: boolean;
}

interface SentBatch {
  waiters: Waiter[];
  timer: NodeJS.Timeout;
}

/** One open AppendStream call and the batches it has not acknowledged. */
interface OpenStream {
  call: ClientDuplexStream<AppendStreamRequest, AppendStreamResponse>;
  batches: Map<bigint, SentBatch>;
}

export interface StreamingAuditAppenderOptions {
  client: AuditServiceClient;
  /** How long a batch may wait for its acknowledgement before its appends fail. */
  deadlineMs: number;
  logger: Logger;
}

/**
 * Appender over one long-lived AppendStream to the audit service. The
 * records of every `append` made in the same event-loop turn go out as one
 * batch. Each call resolves with its own sequences once the audit service
 * reports them synced to disk.
 *
 * When the stream fails, the batches in flight on it fail and the next
 * append opens a new stream. A batch not acknowledged within the deadline
 * fails too, and the stream is dropped so that a stuck connection is not
 * reused.
 */
export class StreamingAuditAppender implements AuditAppender {
  private stream: OpenStream | undefined;
  private queued: Waiter[] = [];
  private flushScheduled = false;
  private nextBatchId = 1n;
  private closed = false;

  constructor(private readonly options: StreamingAuditAppenderOptions) {}

  append(records: Partial<AuditRecord>[], signal?: AbortSignal): Promise<number[]> {
    if (this.closed) return Promise.reject(new EwiiError("ERR_AUDIT_UNAVAILABLE", "the hub is shutting down; audit records are no longer sent", { status: status.UNAVAILABLE }));
    if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
    const full = records.map((record) => AuditRecord.fromPartial(record));
    const bytes = full.reduce((sum, record) => sum + AuditRecord.encode(record).finish().length + RECORD_FRAMING_BYTES, 0);
    if (bytes > MAX_BATCH_BYTES) {
      // A larger append could pass the server's message limit, which fails the stream and every batch on it.
      return Promise.reject(new EwiiError(AuditErrorCode.recordInvalid, `the append encodes to ${bytes} bytes, above the limit of ${MAX_BATCH_BYTES}; append fewer records per call`, { status: status.INVALID_ARGUMENT }));
    }
    return new Promise<number[]>((resolve, reject) => {
      const onAbort = (): void => waiter.reject(signal?.reason as Error);
      const waiter: Waiter = {
        records: full,
        bytes,
        settled: false,
        resolve: (sequences) => settle(() => resolve(sequences)),
        reject: (error) => settle(() => reject(error)),
      };
      const settle = (finish: () => void): void => {
        if (waiter.settled) return;
        waiter.settled = true;
        signal?.removeEventListener("abort", onAbort);
        finish();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queued.push(waiter);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Ends the stream; appends still waiting fail. */
  close(): void {
    this.closed = true;
    const error = new EwiiError("ERR_AUDIT_UNAVAILABLE", "the hub is shutting down; the audit record was not acknowledged", { status: status.UNAVAILABLE });
    for (const waiter of this.queued) waiter.reject(error);
    this.queued = [];
    const open = this.stream;
    if (open !== undefined) {
      this.drop(open, error);
      open.call.end();
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const waiting = this.queued.filter((waiter) => !waiter.settled);
    this.queued = [];
    let batch: Waiter[] = [];
    let records = 0;
    let bytes = 0;
    for (const waiter of waiting) {
      if (batch.length > 0 && (records + waiter.records.length > MAX_BATCH_RECORDS || bytes + waiter.bytes > MAX_BATCH_BYTES)) {
        this.send(batch);
        batch = [];
        records = 0;
        bytes = 0;
      }
      batch.push(waiter);
      records += waiter.records.length;
      bytes += waiter.bytes;
    }
    if (batch.length > 0) this.send(batch);
  }

  private send(waiters: Waiter[]): void {
    const open = this.stream ?? this.open();
    const batchId = this.nextBatchId++;
    const timer = setTimeout(() => this.expire(open, batchId), this.options.deadlineMs);
    open.batches.set(batchId, { waiters, timer });
    open.call.write({ batchId, records: waiters.flatMap((waiter) => waiter.records) });
  }

  private open(): OpenStream {
    const call = this.options.client.appendStream();
    const open: OpenStream = { call, batches: new Map() };
    this.stream = open;
    call.on("data", (response: AppendStreamResponse) => this.acknowledge(open, response));
    call.on("error", (err: Error) => {
      if (this.stream !== open) return;
      this.options.logger.warn("audit append stream failed", { [LogField.errorCode]: errorCodeOf(err) ?? "ERR_AUDIT_UNAVAILABLE", [LogField.cause]: err.message });
      this.drop(open, new EwiiError("ERR_AUDIT_UNAVAILABLE", `the audit append stream failed: ${err.message}`, { status: status.UNAVAILABLE, cause: err }));
    });
    call.on("end", () => this.drop(open, new EwiiError("ERR_AUDIT_UNAVAILABLE", "the audit service ended the append stream before acknowledging the records", { status: status.UNAVAILABLE })));
    return open;
  }

  private acknowledge(open: OpenStream, response: AppendStreamResponse): void {
    const batch = open.batches.get(response.batchId);
    if (batch === undefined) return;
    open.batches.delete(response.batchId);
    clearTimeout(batch.timer);
    if (response.errorCode === AuditErrorCode.recordInvalid && batch.waiters.length > 1) {
      // The audit log rejects a batch with an invalid record as a whole and
      // stores none of it, so each append is resent alone: only the append
      // with the invalid record fails.
      for (const waiter of batch.waiters) {
        if (!waiter.settled) this.send([waiter]);
      }
      return;
    }
    if (response.errorCode !== "") {
      const code = response.errorCode === AuditErrorCode.recordInvalid ? status.INVALID_ARGUMENT : status.UNAVAILABLE;
      const error = new EwiiError(response.errorCode, `the audit service did not store the records: ${response.errorMessage}`, { status: code });
      for (const waiter of batch.waiters) waiter.reject(error);
      return;
    }
    const expected = batch.waiters.reduce((sum, waiter) => sum + waiter.records.length, 0);
    if (response.sequences.length !== expected) {
      const error = new EwiiError("ERR_AUDIT_UNAVAILABLE", `the audit service acknowledged batch ${response.batchId} with ${response.sequences.length} sequences for ${expected} records`, { status: status.UNAVAILABLE });
      for (const waiter of batch.waiters) waiter.reject(error);
      return;
    }
    let offset = 0;
    for (const waiter of batch.waiters) {
      waiter.resolve(response.sequences.slice(offset, offset + waiter.records.length).map(Number));
      offset += waiter.records.length;
    }
  }

  private expire(open: OpenStream, batchId: bigint): void {
    if (!open.batches.has(batchId)) return;
    this.options.logger.warn("audit batch not acknowledged in time; reopening the append stream", { batch_id: batchId.toString(10), deadline_ms: this.options.deadlineMs });
    this.drop(open, new EwiiError("ERR_AUDIT_UNAVAILABLE", `the audit service did not acknowledge the records within ${this.options.deadlineMs} ms`, { status: status.DEADLINE_EXCEEDED }));
    open.call.cancel();
  }

  /** Forgets a stream and fails every batch it has not acknowledged. */
  private drop(open: OpenStream, error: EwiiError): void {
    if (this.stream === open) this.stream = undefined;
    for (const batch of open.batches.values()) {
      clearTimeout(batch.timer);
      for (const waiter of batch.waiters) waiter.reject(error);
    }
    open.batches.clear();
  }
}
