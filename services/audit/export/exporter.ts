/**
 * One exporter per sink. It reads entries after its cursor from the segment
 * files (never from the append path, so a slow or dead SIEM cannot slow
 * appends), formats them, sends them in order and persists the cursor.
 *
 * States: connecting -> connected -> (backoff -> connecting)* -> stopped,
 * and error when the sink cannot go on (a damaged cursor or log), which
 * `ewii audit sinks` shows with the cause.
 *
 * Delivery: a file sink's data is delivered once synced. A stream sink has
 * no receiver acknowledgement, so a write counts as delivered once the
 * connection stayed up `confirm_after_ms` after it; on a disconnect the
 * exporter sends again from the last delivered entry, so a receiver may see
 * entries twice, each with its sequence. On a clean stop the exporter
 * first sends the entries up to the head at the time of the stop, for at
 * most `drainTimeoutMs`, then ends the connection, waits for the receiver
 * to close, and persists the last sent sequence. So nothing is sent twice
 * after a clean restart, and nothing is left behind unless the sink was
 * down or slower than the drain timeout. After a crash, entries after the
 * persisted cursor are sent again.
 */
import type { Logger } from "../../core/log.js";
import { LogField } from "../../core/log.js";
import { asError } from "../../core/errors.js";
import type { AuditLog } from "../log.js";
import { readCursor, writeCursor } from "./cursor.js";
import type { ReadEntry } from "./entry-reader.js";
import { EntryReader } from "./entry-reader.js";
import { formatPayload } from "./payload.js";
import type { PayloadFormat, PayloadOptions } from "./payload.js";
import type { SinkTransport } from "./transport.js";

export type SinkState = "connecting" | "connected" | "backoff" | "error" | "stopped";

/** How often an idle exporter looks for entries that arrived without a notification (checkpoints), in milliseconds. */
const IDLE_POLL_MS = 1000;

export interface SinkExporterOptions {
  name: string;
  type: string;
  log: AuditLog;
  transport: SinkTransport;
  format: PayloadFormat;
  payload: PayloadOptions;
  cursorPath: string;
  batchEntries: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  confirmAfterMs: number;
  /** Maximum time a clean stop spends sending the entries still pending, in milliseconds. */
  drainTimeoutMs: number;
  logger: Logger;
  now?: () => Date;
  /** Uniform random number in [0, 1), for backoff jitter. */
  random?: () => number;
}

export interface SinkStatus {
  name: string;
  type: string;
  target: string;
  state: SinkState;
  stateSince: Date;
  /** Last sequence sent (possibly not yet delivered). */
  sentSequence: bigint;
  /** Last sequence delivered and persisted in the cursor file. */
  persistedSequence: bigint;
  headSequence: bigint;
  /** Entries (records and checkpoints) between the last delivered one and the head. */
  lagEntries: bigint;
  /** Age of the oldest entry not yet delivered, in milliseconds; 0 when none. */
  oldestUnsentAgeMs: number;
  lastError: string;
}

interface SentBatch {
  last: bigint;
  firstTimeMs: number;
  writtenAtMs: number;
}

export class SinkExporter {
  private state: SinkState = "connecting";
  private stateSince: Date;
  private lastError = "";
  private reader: EntryReader | undefined;
  private delivered = 0n;
  private persisted = 0n;
  private sent = 0n;
  private unconfirmed: SentBatch[] = [];
  private oldestUnsentTimeMs = 0;
  private attempts = 0;
  private stopping = false;
  /** Head sequence when stop was called: a clean stop sends entries up to it. */
  private drainTarget = 0n;
  private drainDeadlineMs = 0;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly now: () => Date;
  private readonly random: () => number;

  constructor(private readonly options: SinkExporterOptions) {
    this.now = options.now ?? (() => new Date());
    this.random = options.random ?? Math.random;
    this.stateSince = this.now();
  }

  /** Loads the cursor and starts exporting in the background. */
  async start(): Promise<void> {
    const cursor = await readCursor(this.options.cursorPath);
    if (cursor !== undefined && cursor.logId !== this.options.log.logId) {
      this.transition("error", `the cursor ${this.options.cursorPath} belongs to log ${cursor.logId}, not ${this.options.log.logId}; delete it to export this log from the start`);
      return;
    }
    this.delivered = cursor?.sequence ?? 0n;
    this.persisted = this.delivered;
    this.sent = this.delivered;
    this.options.transport.onLost((err) => this.connectionLost(err));
    this.unsubscribe = this.options.log.subscribe(() => this.wake?.());
    this.running = this.loop();
  }

  /**
   * Sends the entries up to the current head (bounded by `drainTimeoutMs`),
   * then closes the transport and persists the cursor.
   */
  async stop(): Promise<void> {
    if (this.stopping) return this.running;
    this.drainTarget = this.options.log.head.sequence;
    this.drainDeadlineMs = Date.now() + this.options.drainTimeoutMs;
    this.stopping = true;
    // A write to a receiver that stopped reading never completes, so the
    // transport is closed at the deadline, which fails that write.
    const deadline = setTimeout(() => {
      this.options.logger.warn("audit export drain timed out at stop; the rest is sent after the next start", { sink: this.options.name, [LogField.sequence]: this.sent.toString(10), drain_to_sequence: this.drainTarget.toString(10) });
      this.options.transport.close().catch(() => undefined);
    }, this.options.drainTimeoutMs);
    deadline.unref();
    this.unsubscribe?.();
    this.wake?.();
    try {
      await this.running;
    } finally {
      clearTimeout(deadline);
    }
  }

  status(): SinkStatus {
    const head = this.options.log.head.sequence;
    const lag = head > this.delivered ? head - this.delivered : 0n;
    return {
      name: this.options.name,
      type: this.options.type,
      target: this.options.transport.target,
      state: this.state,
      stateSince: this.stateSince,
      sentSequence: this.sent,
      persistedSequence: this.persisted,
      headSequence: head,
      lagEntries: lag,
      oldestUnsentAgeMs: lag === 0n || this.oldestUnsentTimeMs === 0 ? 0 : Math.max(0, this.now().getTime() - this.oldestUnsentTimeMs),
      lastError: this.lastError,
    };
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopping || this.draining()) {
        if (this.state !== "connected") {
          // A stopping exporter does not reconnect, so a dead sink cannot hold up the stop.
          if (this.stopping) break;
          if (!(await this.connect())) continue;
        }
        await this.confirm();
        const entries = await this.readBatch();
        if (entries.length === 0) {
          if (this.stopping) break;
          await this.idle(this.unconfirmed.length > 0 ? this.options.confirmAfterMs : IDLE_POLL_MS);
          continue;
        }
        await this.sendBatch(entries);
      }
      await this.shutdown();
    } catch (err: unknown) {
      // Reading or the cursor failed: the sink cannot continue without an operator.
      this.transition("error", asError(err).message);
      await this.options.transport.close().catch(() => undefined);
    } finally {
      await this.reader?.close();
    }
  }

  private async connect(): Promise<boolean> {
    this.transition("connecting");
    try {
      await this.options.transport.open();
    } catch (err: unknown) {
      await this.backoff(asError(err));
      return false;
    }
    this.attempts = 0;
    this.transition("connected");
    return true;
  }

  /** True while a clean stop still has entries to send and time to send them. */
  private draining(): boolean {
    return this.state === "connected" && this.sent < this.drainTarget && Date.now() < this.drainDeadlineMs;
  }

  private async readBatch(): Promise<ReadEntry[]> {
    this.reader ??= new EntryReader(this.options.log.dir, this.sent);
    const head = this.stopping ? this.drainTarget : this.options.log.head.sequence;
    const entries = await this.reader.read(head, this.options.batchEntries);
    if (entries.length > 0 && this.unconfirmed.length === 0 && this.sent === this.delivered) this.oldestUnsentTimeMs = Date.parse(String(entries[0].entry.time));
    return entries;
  }

  private async sendBatch(entries: ReadEntry[]): Promise<void> {
    const payloads = entries.map((item) => formatPayload(this.options.format, item.entry, item.line, this.options.payload));
    try {
      await this.options.transport.send(payloads);
    } catch (err: unknown) {
      this.rewind();
      await this.options.transport.close().catch(() => undefined);
      await this.backoff(asError(err));
      return;
    }
    if (this.state !== "connected") {
      // The connection was lost while this write was in flight.
      this.rewind();
      return;
    }
    const last = entries[entries.length - 1].sequence;
    this.sent = last;
    this.unconfirmed.push({ last, firstTimeMs: Date.parse(String(entries[0].entry.time)), writtenAtMs: this.now().getTime() });
    if (this.options.transport.confirmsOnSend) await this.confirm();
  }

  /** Counts batches as delivered once old enough (or at once for files) and persists the cursor. */
  private async confirm(all = false): Promise<void> {
    const cutoff = this.now().getTime() - this.options.confirmAfterMs;
    let confirmed = this.delivered;
    while (this.unconfirmed.length > 0 && (all || this.options.transport.confirmsOnSend || this.unconfirmed[0].writtenAtMs <= cutoff)) {
      confirmed = this.unconfirmed.shift()!.last;
    }
    if (confirmed === this.delivered) return;
    this.delivered = confirmed;
    this.oldestUnsentTimeMs = this.unconfirmed[0]?.firstTimeMs ?? 0;
    await writeCursor(this.options.cursorPath, { sequence: confirmed, logId: this.options.log.logId });
    this.persisted = confirmed;
  }

  /** Forgets unconfirmed sends so the next read starts after the last delivered entry. */
  private rewind(): void {
    if (this.unconfirmed.length > 0) this.oldestUnsentTimeMs = this.unconfirmed[0].firstTimeMs;
    this.unconfirmed = [];
    if (this.sent !== this.delivered) {
      this.options.logger.info("audit export will send entries again after a lost connection", { sink: this.options.name, from_sequence: (this.delivered + 1n).toString(10), to_sequence: this.sent.toString(10) });
    }
    this.sent = this.delivered;
    const reader = this.reader;
    this.reader = undefined;
    // A failed close of a read-only file changes nothing for the export.
    reader?.close().catch(() => undefined);
  }

  private connectionLost(err: Error): void {
    if (this.state !== "connected") return;
    this.lastError = err.message;
    this.rewind();
    this.transition("backoff", err.message);
    this.wake?.();
  }

  private async backoff(err: Error): Promise<void> {
    if (this.stopping) {
      this.transition("backoff", err.message);
      return;
    }
    const ceilingMs = Math.min(this.options.backoffMaxMs, this.options.backoffInitialMs * 2 ** Math.min(this.attempts, 30));
    const delayMs = Math.round(this.random() * ceilingMs);
    this.attempts += 1;
    this.transition("backoff", err.message, { retry_in_ms: delayMs, attempt: this.attempts });
    await this.idle(delayMs);
  }

  private idle(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  private async shutdown(): Promise<void> {
    if (this.state === "connected") {
      await this.options.transport.close();
      await this.confirm(true);
    } else {
      await this.options.transport.close().catch(() => undefined);
    }
    this.transition("stopped");
  }

  private transition(to: SinkState, cause = "", fields: Record<string, unknown> = {}): void {
    if (cause !== "") this.lastError = cause;
    if (to === this.state && to !== "backoff") return;
    const from = this.state;
    this.state = to;
    this.stateSince = this.now();
    let level = "info";
    if (to === "error") level = "error";
    else if (to === "backoff") level = "warn";
    this.options.logger.log(level, `audit sink ${to}`, {
      sink: this.options.name,
      target: this.options.transport.target,
      from,
      [LogField.sequence]: this.delivered.toString(10),
      ...(cause === "" ? {} : { [LogField.cause]: cause }),
      ...fields,
    });
  }
}
