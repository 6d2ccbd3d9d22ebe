/**
 * The audit log: append-only, hash-chained and durable, in segment files
 * under one data directory.
 *
 * Files in the directory:
 *   - `segment-<first sequence>.jsonl`: the entries, one JCS canonical JSON
 *     object per line (encoding and hash in entry.ts, files in segments.ts);
 *   - `log-id`: 32 hexadecimal digits naming this log in its checkpoints;
 *   - `checkpoint-ed25519.key.pem` / `.pub.pem`: the checkpoint signing key
 *     (checkpoint.ts) unless the caller passes one;
 *   - `latest-checkpoint.json`: a copy of the newest checkpoint entry, so a
 *     verifier can see that segment files were cut short;
 *   - `params-hmac.key`: a generated params key when none is configured.
 *
 * Group commit: `append` queues its records. One writer takes everything
 * queued, assigns sequences, writes it in one call and runs one fdatasync.
 * Only then does it resolve every caller of that batch. Records that arrive
 * during a sync form the next batch. If a write or sync fails, the log
 * stops accepting records until it is reopened, because after a failed
 * fsync the file's contents are unknown; reopening cuts any torn tail.
 */
import { randomBytes } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { mkdir, open, readFile, rename, writeFile } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import { EwiiError, asError } from "../core/errors.js";
import type { Logger } from "../core/log.js";
import { LogField, silentLogger } from "../core/log.js";
import { buildCheckpoint, checkpointKeyFrom, loadOrCreateCheckpointKey } from "./checkpoint.js";
import type { CheckpointKey } from "./checkpoint.js";
import { ENTRY_KIND_RECORD, decodeRecord, entryLine, parseEntryLine } from "./entry.js";
import type { StoredEntry } from "./entry.js";
import { AuditErrorCode, recordInvalid } from "./errors.js";
import { RecordIndex } from "./record-index.js";
import type { IndexedRecord } from "./record-index.js";
import { prepareRecord } from "./record-input.js";
import type { AuditRecordInput, ParamsPolicy } from "./record-input.js";
import { sealPrepared } from "./sealed-record.js";
import type { PreparedRecord } from "./sealed-record.js";
import { scanSegments, segmentName, syncDirectory } from "./segments.js";

export type { AuditRecordInput } from "./record-input.js";

export const LOG_ID_FILE = "log-id";
export const LATEST_CHECKPOINT_FILE = "latest-checkpoint.json";

/** A batch stops taking queued appends once it contains this many bytes. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** Largest single append, in bytes of stored entries (counted before the chain fields are added). */
export const MAX_APPEND_BYTES = 4 * 1024 * 1024;
/**
 * A batch is at most MAX_BATCH_BYTES plus one append plus small checkpoint
 * entries; twice that bounds the bytes an interrupted write can leave.
 */
const TORN_WINDOW_BYTES = 2 * (MAX_BATCH_BYTES + MAX_APPEND_BYTES);
/** Bytes that sequence, time and hashes add to an entry, rounded up. */
const CHAIN_FIELDS_BYTES = 256;
export const DEFAULT_SEGMENT_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_CHECKPOINT_EVERY_RECORDS = 1000;
export const DEFAULT_CHECKPOINT_EVERY_SECONDS = 10;

export interface AuditLogOptions {
  /** Key for the params HMAC (at least 32 bytes); see params.ts `loadParamsKey`. */
  paramsKey: Buffer;
  /** Datasets whose records keep raw parameters next to the digest. */
  rawParamsDatasets?: readonly string[];
  now?: () => Date;
  /** Ed25519 private key for checkpoints; by default one kept in the data directory. */
  signingKey?: KeyObject;
  checkpointEveryRecords?: number;
  /** 0 turns the timer off. */
  checkpointEverySeconds?: number;
  segmentMaxBytes?: number;
  logger?: Logger;
}

/** Called with each batch of records once it is durable. */
export type AppendListener = (records: AuditRecord[]) => void;

/** The chain state after the last built batch, which may not be durable yet. */
interface ChainState {
  sequence: bigint;
  hash: string;
  recordsSinceCheckpoint: number;
  fileBytes: number;
}

interface BuiltBatch {
  batch: PendingAppend[];
  buffer: Buffer;
  results: AuditRecord[][];
  located: Array<{ entry: StoredEntry; offset: number; length: number }>;
  checkpoint: StoredEntry | undefined;
  /** Lines in the buffer, records and checkpoints. */
  entries: number;
  head: ChainState;
}

interface PendingAppend {
  entries: PreparedRecord[];
  bytes: number;
  resolve(records: AuditRecord[]): void;
  reject(err: unknown): void;
}

export class AuditLog {
  readonly dir: string;
  readonly logId: string;
  readonly publicKey: KeyObject;
  private readonly options: Required<Omit<AuditLogOptions, "signingKey" | "rawParamsDatasets">>;
  private readonly params: ParamsPolicy;
  private readonly key: CheckpointKey;
  private readonly index: RecordIndex;
  private readonly segments: string[];
  private readonly readers = new Map<number, FileHandle>();
  private readonly listeners = new Set<AppendListener>();
  private file: FileHandle;
  private headSequence: bigint;
  private headHash: string;
  private recordsSinceCheckpoint: number;
  private tentative: ChainState;
  private pending: PendingAppend[] = [];
  private checkpointRequested = false;
  private flushing: Promise<void> | undefined;
  private latestCheckpointWrite: Promise<void> = Promise.resolve();
  private failure: EwiiError | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly counters = { batches: 0, records: 0, checkpoints: 0 };

  private constructor(dir: string, init: { logId: string; key: CheckpointKey; params: ParamsPolicy; options: AuditLog["options"]; segments: string[]; file: FileHandle; fileBytes: number; headSequence: bigint; headHash: string; recordsSinceCheckpoint: number; index: RecordIndex }) {
    this.dir = dir;
    this.logId = init.logId;
    this.key = init.key;
    this.publicKey = init.key.publicKey;
    this.params = init.params;
    this.options = init.options;
    this.segments = init.segments;
    this.file = init.file;
    this.headSequence = init.headSequence;
    this.headHash = init.headHash;
    this.recordsSinceCheckpoint = init.recordsSinceCheckpoint;
    this.tentative = { sequence: init.headSequence, hash: init.headHash, recordsSinceCheckpoint: init.recordsSinceCheckpoint, fileBytes: init.fileBytes };
    this.index = init.index;
    const everySeconds = init.options.checkpointEverySeconds;
    if (everySeconds > 0) {
      this.timer = setInterval(() => this.requestCheckpoint(), everySeconds * 1000);
      this.timer.unref();
    }
  }

  /** Opens (or creates) the log in `dir`, cutting a torn tail left by a crash. */
  static async open(dir: string, options: AuditLogOptions): Promise<AuditLog> {
    const logger = options.logger ?? silentLogger();
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const logId = await loadOrCreateLogId(dir);
    const key = options.signingKey === undefined ? await loadOrCreateCheckpointKey(dir) : checkpointKeyFrom(options.signingKey);
    const index = new RecordIndex();
    const scan = await scanSegments({
      dir,
      logger,
      tornWindowBytes: TORN_WINDOW_BYTES,
      onRecord: (entry, segment, offset, length) => index.add(entry, segment, offset, length),
    });
    const segments = scan.segments;
    if (segments.length === 0) {
      segments.push(segmentName(1n));
    }
    const file = await open(join(dir, segments[segments.length - 1]), "a", 0o600);
    if (scan.segments.length === 1 && scan.headSequence === 0n) await syncDirectory(dir);
    logger.info("audit log opened", { dir, log_id: logId, [LogField.sequence]: scan.headSequence.toString(10), records: index.size });

    return new AuditLog(dir, {
      logId,
      key,
      params: { key: options.paramsKey, rawDatasets: new Set(options.rawParamsDatasets ?? []) },
      options: {
        paramsKey: options.paramsKey,
        now: options.now ?? (() => new Date()),
        checkpointEveryRecords: options.checkpointEveryRecords ?? DEFAULT_CHECKPOINT_EVERY_RECORDS,
        checkpointEverySeconds: options.checkpointEverySeconds ?? DEFAULT_CHECKPOINT_EVERY_SECONDS,
        segmentMaxBytes: options.segmentMaxBytes ?? DEFAULT_SEGMENT_MAX_BYTES,
        logger,
      },
      segments,
      file,
      fileBytes: scan.lastSegmentBytes,
      headSequence: scan.headSequence,
      headHash: scan.headHash,
      recordsSinceCheckpoint: scan.recordsSinceCheckpoint,
      index,
    });
  }

  /** Sequence and hash of the newest durable entry (0 and 64 zeros when empty). */
  get head(): { sequence: bigint; hash: string } {
    return { sequence: this.headSequence, hash: this.headHash };
  }

  /** Durable batches (one write and one fdatasync each), records and checkpoints since open. */
  get stats(): { batches: number; records: number; checkpoints: number } {
    return { ...this.counters };
  }

  /** True until a write or sync fails or the log is closed. */
  get writable(): boolean {
    return this.failure === undefined && !this.closed;
  }

  /**
   * Validates and appends records, resolving once they are synced to disk.
   * Throws ERR_AUDIT_RECORD_INVALID before queuing anything if any record
   * is invalid, and ERR_AUDIT_UNAVAILABLE when the log cannot write.
   */
  append(records: readonly AuditRecordInput[]): Promise<AuditRecord[]> {
    if (records.length === 0) return Promise.reject(new TypeError("AuditLog.append needs at least one record"));
    const unavailable = this.unavailableError();
    if (unavailable !== undefined) return Promise.reject(unavailable);
    let entries: PreparedRecord[];
    try {
      entries = records.map((record, i) => prepareRecord(record, i, this.params));
    } catch (err: unknown) {
      return Promise.reject(err);
    }
    const bytes = entries.reduce((sum, entry) => sum + entry.partsBytes + CHAIN_FIELDS_BYTES, 0);
    if (bytes > MAX_APPEND_BYTES) {
      return Promise.reject(recordInvalid(`the append holds about ${bytes} bytes of records, above the limit of ${MAX_APPEND_BYTES}; send fewer records per call`));
    }
    return new Promise<AuditRecord[]>((resolve, reject) => {
      this.pending.push({ entries, bytes, resolve, reject });
      this.startFlush();
    });
  }

  /** Appends a checkpoint now if records were appended since the last one; resolves when durable. */
  async checkpoint(): Promise<void> {
    const unavailable = this.unavailableError();
    if (unavailable !== undefined) throw unavailable;
    this.checkpointRequested = true;
    await new Promise<AuditRecord[]>((resolve, reject) => {
      this.pending.push({ entries: [], bytes: 0, resolve, reject });
      this.startFlush();
    });
  }

  /** Registers a listener for durable batches; returns the function that removes it. */
  subscribe(listener: AppendListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The in-memory index of stored records. */
  get records(): RecordIndex {
    return this.index;
  }

  /** Reads the given indexed records from the segment files. */
  async read(located: readonly IndexedRecord[]): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    for (const item of located) {
      const reader = await this.reader(item.segment);
      const buffer = Buffer.alloc(item.length);
      await reader.read(buffer, 0, item.length, item.offset);
      const entry = parseEntryLine(buffer.toString("utf8").trimEnd());
      if (entry === undefined || entry.kind !== ENTRY_KIND_RECORD) {
        throw new EwiiError(AuditErrorCode.logCorrupt, `the audit record at sequence ${item.sequence} no longer parses; run \`ewii audit verify\``, { status: status.INTERNAL });
      }
      out.push(decodeRecord(entry));
    }
    return out;
  }

  /** Writes a final checkpoint, waits for queued appends and closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.failure === undefined && this.recordsSinceCheckpoint > 0) {
      // A failed final checkpoint is logged by the writer; closing goes on.
      await this.checkpoint().catch(() => undefined);
    }
    this.closed = true;
    await this.flushing;
    await this.latestCheckpointWrite;
    await this.file.close();
    for (const reader of this.readers.values()) await reader.close();
    this.readers.clear();
    this.listeners.clear();
  }

  private unavailableError(): EwiiError | undefined {
    if (this.closed) return new EwiiError(AuditErrorCode.logClosed, "the audit log is closed", { status: status.UNAVAILABLE });
    return this.failure;
  }

  private requestCheckpoint(): void {
    if (this.recordsSinceCheckpoint === 0 || !this.writable) return;
    // The writer logs any failure; the timer has no caller to report to.
    this.checkpoint().catch(() => undefined);
  }

  private startFlush(): void {
    if (this.flushing === undefined) this.flushing = this.flushLoop();
  }

  /**
   * Builds each batch (sequences, hashes, checkpoints: the CPU work) while
   * the previous batch is being written and synced, then writes it once the
   * previous one is durable. Writes never overlap, so the file keeps
   * sequence order.
   */
  private async flushLoop(): Promise<void> {
    let inFlight: Promise<boolean> | undefined;
    try {
      for (;;) {
        if (this.pending.length > 0 && this.failure === undefined) {
          if (this.tentative.fileBytes >= this.options.segmentMaxBytes) {
            if (inFlight !== undefined && !(await inFlight)) break;
            inFlight = undefined;
            if (!(await this.rollSegment())) break;
          }
          const built = this.build(this.takeBatch());
          if (inFlight !== undefined && !(await inFlight)) {
            this.fail(built.batch, this.failure);
            break;
          }
          inFlight = this.persist(built);
          continue;
        }
        // Nothing queued: wait for the last write, whose callers may queue more.
        if (inFlight === undefined || !(await inFlight)) break;
        inFlight = undefined;
      }
    } finally {
      // Runs in the same tick as the last empty-queue check, so an append
      // queued after it starts a new loop.
      this.flushing = undefined;
    }
  }

  private takeBatch(): PendingAppend[] {
    let bytes = 0;
    let count = 0;
    while (count < this.pending.length && (count === 0 || bytes < MAX_BATCH_BYTES)) {
      bytes += this.pending[count].bytes;
      count += 1;
    }
    return this.pending.splice(0, count);
  }

  /** Assigns sequences and hashes after the tentative head and adds due checkpoints. */
  private build(batch: PendingAppend[]): BuiltBatch {
    const time = this.options.now();
    const timeText = time.toISOString();
    const tentative = this.tentative;
    let sequence = tentative.sequence;
    let previousHash = tentative.hash;
    let sinceCheckpoint = tentative.recordsSinceCheckpoint;
    let checkpoint: StoredEntry | undefined;
    const lines: string[] = [];
    const results: AuditRecord[][] = [];
    const located: BuiltBatch["located"] = [];
    let offset = tentative.fileBytes;

    const pushCheckpoint = (): void => {
      sequence += 1n;
      checkpoint = buildCheckpoint({ logId: this.logId, sequence, time, previousHash }, this.key);
      lines.push(entryLine(checkpoint));
      offset += Buffer.byteLength(lines[lines.length - 1], "utf8");
      previousHash = String(checkpoint.hash);
      sinceCheckpoint = 0;
    };

    for (const item of batch) {
      const out: AuditRecord[] = [];
      for (const prepared of item.entries) {
        sequence += 1n;
        const sealed = sealPrepared(prepared, sequence, time, timeText, previousHash);
        previousHash = String(prepared.entry.hash);
        lines.push(sealed.line);
        located.push({ entry: prepared.entry, offset, length: sealed.bytes });
        offset += sealed.bytes;
        out.push(prepared.record);
        sinceCheckpoint += 1;
        if (sinceCheckpoint >= this.options.checkpointEveryRecords) pushCheckpoint();
      }
      results.push(out);
    }
    if (this.checkpointRequested && sinceCheckpoint > 0) pushCheckpoint();
    this.checkpointRequested = false;

    this.tentative = { sequence, hash: previousHash, recordsSinceCheckpoint: sinceCheckpoint, fileBytes: offset };
    return { batch, buffer: Buffer.from(lines.join(""), "utf8"), results, located, checkpoint, entries: lines.length, head: this.tentative };
  }

  /** Writes and syncs a built batch, then makes it visible and resolves its callers. Returns false on failure. */
  private async persist(built: BuiltBatch): Promise<boolean> {
    try {
      if (built.buffer.length > 0) {
        await this.file.write(built.buffer, 0, built.buffer.length);
        await this.file.datasync();
      }
    } catch (err: unknown) {
      this.fail(built.batch, err);
      return false;
    }

    this.counters.batches += built.buffer.length > 0 ? 1 : 0;
    this.counters.records += built.located.length;
    this.counters.checkpoints += built.entries - built.located.length;
    this.headSequence = built.head.sequence;
    this.headHash = built.head.hash;
    this.recordsSinceCheckpoint = built.head.recordsSinceCheckpoint;
    const segment = this.segments.length - 1;
    for (const { entry, offset, length } of built.located) this.index.add(entry, segment, offset, length);
    if (built.checkpoint !== undefined) this.saveLatestCheckpoint(built.checkpoint);
    built.batch.forEach((item, i) => item.resolve(built.results[i]));
    const appended = built.results.flat();
    if (appended.length > 0) this.notify(appended);
    return true;
  }

  private fail(batch: PendingAppend[], err: unknown): void {
    if (this.failure !== undefined) {
      for (const item of [...batch, ...this.pending.splice(0)]) item.reject(this.failure);
      return;
    }
    const cause = asError(err);
    this.failure = new EwiiError(AuditErrorCode.logUnavailable, "the audit log cannot write to disk; the service must be restarted once the disk is healthy", { status: status.UNAVAILABLE, cause });
    this.options.logger.error("audit log write failed; no further appends until it is reopened", { dir: this.dir, [LogField.cause]: cause.message, [LogField.sequence]: this.headSequence.toString(10) });
    for (const item of [...batch, ...this.pending.splice(0)]) item.reject(this.failure);
  }

  private notify(records: AuditRecord[]): void {
    for (const listener of this.listeners) {
      try {
        listener(records);
      } catch (err: unknown) {
        this.options.logger.error("audit append listener failed", { [LogField.cause]: asError(err).message });
      }
    }
  }

  /** Starts the next segment file at the tentative head. Returns false (and fails the log) on error. */
  private async rollSegment(): Promise<boolean> {
    const name = segmentName(this.tentative.sequence + 1n);
    try {
      const file = await open(join(this.dir, name), "a", 0o600);
      await syncDirectory(this.dir);
      await this.file.close();
      this.file = file;
    } catch (err: unknown) {
      this.fail([], err);
      return false;
    }
    this.tentative = { ...this.tentative, fileBytes: 0 };
    this.segments.push(name);
    this.options.logger.info("audit log started a new segment", { file: name, [LogField.sequence]: (this.tentative.sequence + 1n).toString(10) });
    return true;
  }

  private async reader(segment: number): Promise<FileHandle> {
    let handle = this.readers.get(segment);
    if (handle === undefined) {
      handle = await open(join(this.dir, this.segments[segment]), "r");
      this.readers.set(segment, handle);
    }
    return handle;
  }

  /** Replaces `latest-checkpoint.json` atomically, one write at a time, off the append path. */
  private saveLatestCheckpoint(entry: StoredEntry): void {
    this.latestCheckpointWrite = this.latestCheckpointWrite.then(async () => {
      const path = join(this.dir, LATEST_CHECKPOINT_FILE);
      try {
        const handle = await open(`${path}.tmp`, "w", 0o600);
        try {
          await handle.writeFile(entryLine(entry));
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(`${path}.tmp`, path);
        await syncDirectory(this.dir);
      } catch (err: unknown) {
        // The checkpoint is already in the chain; only the truncation hint is stale.
        this.options.logger.warn("could not update the latest checkpoint file", { file: path, [LogField.cause]: asError(err).message });
      }
    });
  }
}

async function loadOrCreateLogId(dir: string): Promise<string> {
  const path = join(dir, LOG_ID_FILE);
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const logId = randomBytes(16).toString("hex");
  await writeFile(path, `${logId}\n`, { mode: 0o644, flag: "wx" });
  return logId;
}
