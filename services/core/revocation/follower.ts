import type { Revocation } from "../../../gen/ewii/ca/v1/ca.js";
import { asError } from "../errors.js";
import { LogField, type Logger } from "../log.js";
import type { DenySet } from "./deny-set.js";

/** Where a follower reads the CA's revocation log from (the CA's ListRevocations RPC). */
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
  now?: () => number;
}

/**
 * Keeps a deny set current with the CA's revocation log. Revocations pushed
 * by a bus are applied at once when they are the next sequence; a gap, a
 * restart or a bus reconnect triggers a catch-up with ListRevocations, and a
 * poll on an interval catches anything a lossy bus dropped.
 */
export class RevocationFollower {
  private timer: NodeJS.Timeout | undefined;
  private catchUpRunning: Promise<void> | undefined;
  private catchUpAgain = false;
  private lastConfirmedMs: number | undefined;
  private stale = true;
  private staleReason = "revocation state not loaded yet";
  private readonly now: () => number;

  constructor(private readonly options: RevocationFollowerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Loads the full log once, then polls. Rejects if the first load fails. */
  async start(): Promise<void> {
    await this.catchUp();
    this.timer = setInterval(() => {
      this.catchUp().catch(() => {
        // Logged inside catchUp; the next poll retries.
      });
      this.checkStaleness();
    }, this.options.pollIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** True when the state could not be confirmed within the staleness bound. */
  isStale(): boolean {
    this.checkStaleness();
    return this.stale;
  }

  /** Why the follower is stale, for health and errors. */
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
      this.applyOne(revocation);
      return;
    }
    this.options.logger.warn("revocation sequence gap, catching up from the CA", { [LogField.sequence]: sequence, applied_sequence: applied });
    void this.catchUp().catch(() => {
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

  private async runCatchUp(): Promise<void> {
    do {
      this.catchUpAgain = false;
      try {
        let latest: number;
        do {
          const page = await this.options.source.listRevocations(this.options.denySet.sequence);
          for (const revocation of page.revocations) this.applyOne(revocation);
          latest = page.latestSequence;
          if (page.revocations.length === 0) break;
        } while (this.options.denySet.sequence < latest);
        this.lastConfirmedMs = this.now();
        this.setStale(false, "revocation state confirmed");
      } catch (err) {
        this.options.logger.warn("revocation catch-up failed", { [LogField.cause]: asError(err).message, applied_sequence: this.options.denySet.sequence });
        this.checkStaleness();
        throw err;
      }
    } while (this.catchUpAgain);
  }

  private applyOne(revocation: Revocation): void {
    if (this.options.denySet.apply(revocation)) this.options.onRevoked(revocation);
  }

  private checkStaleness(): void {
    if (this.lastConfirmedMs === undefined) return;
    const ageMs = this.now() - this.lastConfirmedMs;
    if (ageMs > this.options.stalenessBoundMs) {
      this.setStale(true, `revocation state unconfirmed for ${ageMs} ms (bound ${this.options.stalenessBoundMs} ms): the CA is unreachable`);
    }
  }

  private setStale(stale: boolean, reason: string): void {
    if (stale === this.stale) return;
    this.stale = stale;
    this.staleReason = reason;
    if (stale) this.options.logger.error("revocation state is stale: refusing new sessions", { reason });
    else this.options.logger.info("revocation state is current", { [LogField.sequence]: this.options.denySet.sequence });
    this.options.onStaleChange?.(stale, reason);
  }
}
