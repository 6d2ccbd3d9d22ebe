import type { Revocation } from "../../../gen/ewii/ca/v1/ca.js";
import { asError } from "../errors.js";
import { LogField, type Logger } from "../log.js";
import type { RevocationBus } from "./bus.js";
import type { DenySet } from "./deny-set.js";

/** Interval between deny-set prunes of expired entries when none is configured, in milliseconds. */
export const DEFAULT_PRUNE_INTERVAL_MS = 60_000;
/** Maximum interval between staleness checks, in milliseconds. */
export const MAX_STALENESS_CHECK_INTERVAL_MS = 1_000;

/** Source of the CA's revocation log for a follower (the CA's ListRevocations RPC). */
export interface RevocationSource {
  listRevocations(sinceSequence: number): Promise<{ revocations: Revocation[]; latestSequence: number }>;
}

export interface RevocationFollowerOptions {
  source: RevocationSource;
  denySet: DenySet;
  logger: Logger;
  /** Interval between polls of the CA, in milliseconds. */
  pollIntervalMs: number;
  /** Past this age of the last confirmed state, the follower reports itself stale. */
  stalenessBoundMs: number;
  /** Called once per newly applied revocation, in sequence order. */
  onRevoked: (revocation: Revocation) => void;
  /** Called when the stale flag changes. */
  onStaleChange?: (stale: boolean, reason: string) => void;
  /** Push channel of new revocations; without it the follower only polls. */
  bus?: RevocationBus;
  /** Interval between prunes of entries whose certificates have all expired, in milliseconds. */
  pruneIntervalMs?: number;
  now?: () => number;
}

/**
 * Keeps a deny set current with the CA's revocation log. Revocations pushed
 * by a bus are applied at once when they are the next sequence. A gap, a
 * restart or a bus reconnect triggers a catch-up with ListRevocations, and a
 * poll on an interval catches anything a lossy bus dropped.
 *
 * Staleness: the state counts as confirmed at the end of each successful
 * catch-up, and for as long as the bus subscription stays up after a
 * catch-up that ran once it was connected, because every revocation
 * published in that time either arrives or shows up as a gap. The follower
 * turns stale when neither holds within `stalenessBoundMs`, that is when
 * the CA and the bus have both been unreachable for longer than the bound.
 * A timer checks the bound, so the flag flips even when no poll completes.
 */
export class RevocationFollower {
  private pollTimer: NodeJS.Timeout | undefined;
  private stalenessTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private catchUpRunning: Promise<void> | undefined;
  private catchUpAgain = false;
  private lastCatchUpMs: number | undefined;
  private busConnected = false;
  /** True while the bus is connected and a catch-up completed after it connected. */
  private busInSync = false;
  /** When the bus last stopped being in sync, so its confirmation lasts until then. */
  private busLastInSyncMs: number | undefined;
  private stale = true;
  private staleReason = "revocation state not loaded yet";
  private readonly now: () => number;
  /** Counters for metrics and tests. */
  readonly counters = { pushedApplied: 0, caughtUp: 0, gaps: 0, reconnects: 0, pruned: 0, catchUpFailures: 0 };

  constructor(private readonly options: RevocationFollowerOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Subscribes to the bus, loads the log, then polls. The subscription
   * comes first so nothing published during the first load is missed.
   * Rejects if the first load fails.
   */
  async start(): Promise<void> {
    if (this.options.bus !== undefined) {
      this.unsubscribe = await this.options.bus.subscribe((revocation) => this.deliver(revocation), {
        onReconnect: () => this.onBusReconnect(),
        onDisconnect: (reason) => this.onBusDisconnect(reason),
      });
    }
    try {
      await this.catchUp();
    } catch (err) {
      await this.stop();
      throw err;
    }

    this.pollTimer = setInterval(() => {
      this.catchUp().catch(() => {
        // Logged inside catchUp; the next poll retries.
      });
    }, this.options.pollIntervalMs);
    this.pollTimer.unref();

    const checkMs = Math.max(10, Math.min(MAX_STALENESS_CHECK_INTERVAL_MS, Math.floor(this.options.stalenessBoundMs / 4)));
    this.stalenessTimer = setInterval(() => this.checkStaleness(), checkMs);
    this.stalenessTimer.unref();

    this.pruneTimer = setInterval(() => this.prune(), this.options.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  async stop(): Promise<void> {
    for (const timer of [this.pollTimer, this.stalenessTimer, this.pruneTimer]) {
      if (timer !== undefined) clearInterval(timer);
    }
    this.pollTimer = this.stalenessTimer = this.pruneTimer = undefined;
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.();
  }

  /** True when the state could not be confirmed within the staleness bound. */
  isStale(): boolean {
    this.checkStaleness();
    return this.stale;
  }

  /** Reason the follower is stale, for health and errors. */
  get reason(): string {
    return this.staleReason;
  }

  get sequence(): number {
    return this.options.denySet.sequence;
  }

  /** Applies a revocation pushed by a bus, catching up first on a gap. */
  deliver(revocation: Revocation): void {
    const sequence = Number(revocation.sequence);
    const applied = this.options.denySet.sequence;
    if (sequence <= applied) return;
    if (sequence === applied + 1) {
      this.counters.pushedApplied++;
      this.applyOne(revocation);
      return;
    }
    this.counters.gaps++;
    this.options.logger.warn("revocation sequence gap, catching up from the CA", { [LogField.sequence]: sequence, applied_sequence: applied });
    this.catchUp().catch(() => {
      // Logged inside catchUp; the poll retries.
    });
  }

  /** Fetches every revocation after the applied sequence until the CA has no more. */
  catchUp(): Promise<void> {
    if (this.catchUpRunning !== undefined) {
      this.catchUpAgain = true;
      return this.catchUpRunning;
    }
    this.catchUpRunning = this.runCatchUp().finally(() => {
      this.catchUpRunning = undefined;
    });
    return this.catchUpRunning;
  }

  /** Drops deny-set entries whose certificates have all expired; returns how many. */
  prune(): number {
    const removed = this.options.denySet.prune(new Date(this.now()));
    this.counters.pruned += removed;
    if (removed > 0) this.options.logger.info("expired revocations pruned from the deny set", { pruned: removed, remaining: this.options.denySet.size });
    return removed;
  }

  private async runCatchUp(): Promise<void> {
    do {
      this.catchUpAgain = false;
      // A catch-up confirms the bus only if the bus was connected when it began.
      const busConnectedAtStart = this.busConnected;
      try {
        let latest: number;
        do {
          const page = await this.options.source.listRevocations(this.options.denySet.sequence);
          for (const revocation of page.revocations) this.applyOne(revocation);
          this.counters.caughtUp += page.revocations.length;
          latest = page.latestSequence;
          if (page.revocations.length === 0) break;
        } while (this.options.denySet.sequence < latest);
        this.lastCatchUpMs = this.now();
        if (busConnectedAtStart && this.busConnected) this.busInSync = true;
        this.setStale(false, "revocation state confirmed");
      } catch (err) {
        this.counters.catchUpFailures++;
        this.options.logger.warn("revocation catch-up failed", { [LogField.cause]: asError(err).message, applied_sequence: this.options.denySet.sequence });
        this.checkStaleness();
        throw err;
      }
    } while (this.catchUpAgain);
  }

  private onBusReconnect(): void {
    this.counters.reconnects++;
    this.busConnected = true;
    this.busInSync = false;
    this.options.logger.info("revocation bus connected, catching up from the CA", { applied_sequence: this.options.denySet.sequence });
    // A catch-up already running may have started before the subscription,
    // so catchUp() queues another pass after it.
    this.catchUp().catch(() => {
      // Logged inside catchUp; the poll retries.
    });
  }

  private onBusDisconnect(reason: string): void {
    if (this.busInSync) this.busLastInSyncMs = this.now();
    this.busConnected = false;
    this.busInSync = false;
    this.options.logger.warn("revocation bus disconnected; relying on CA polls", { reason, applied_sequence: this.options.denySet.sequence });
  }

  private applyOne(revocation: Revocation): void {
    if (this.options.denySet.apply(revocation)) this.options.onRevoked(revocation);
  }

  /** Time of the latest confirmation by either path, or undefined before the first one. */
  private confirmedAtMs(): number | undefined {
    if (this.busInSync) return this.now();
    const times = [this.lastCatchUpMs, this.busLastInSyncMs].filter((t): t is number => t !== undefined);
    return times.length === 0 ? undefined : Math.max(...times);
  }

  private checkStaleness(): void {
    const confirmedAt = this.confirmedAtMs();
    if (confirmedAt === undefined) return;
    const ageMs = this.now() - confirmedAt;
    if (ageMs > this.options.stalenessBoundMs) {
      const bus = this.options.bus === undefined ? "no revocation bus is configured" : "the revocation bus is disconnected";
      this.setStale(true, `revocation state unconfirmed for ${ageMs} ms (bound ${this.options.stalenessBoundMs} ms): the CA is unreachable and ${bus}`);
    }
  }

  private setStale(stale: boolean, reason: string): void {
    if (stale === this.stale) return;
    this.stale = stale;
    this.staleReason = reason;
    if (stale) this.options.logger.error("revocation state is stale: refusing new sessions", { reason, applied_sequence: this.options.denySet.sequence });
    else this.options.logger.info("revocation state is current", { [LogField.sequence]: this.options.denySet.sequence });
    this.options.onStaleChange?.(stale, reason);
  }
}
