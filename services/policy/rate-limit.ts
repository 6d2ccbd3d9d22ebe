/** Buckets kept before idle ones are dropped; bounds memory when many principals call. */
const DEFAULT_MAX_BUCKETS = 100_000;

const MS_PER_MINUTE = 60_000;

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/**
 * In-memory token buckets, one per key (the evaluator uses rule name and
 * principal). A bucket holds up to `perMinute` tokens and refills
 * continuously at `perMinute` per minute, so a caller may burst up to the
 * limit and then runs at the steady rate. State lives in one process: each
 * hub or policy replica enforces its own limit.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxBuckets: number;

  constructor(options: { maxBuckets?: number } = {}) {
    this.maxBuckets = options.maxBuckets ?? DEFAULT_MAX_BUCKETS;
    if (!Number.isInteger(this.maxBuckets) || this.maxBuckets < 1) throw new TypeError(`maxBuckets must be a positive integer, got ${this.maxBuckets}`);
  }

  /** Takes one token from the bucket of `key` at time `nowMs`; returns false when the bucket is empty. */
  tryTake(key: string, perMinute: number, nowMs: number): boolean {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxBuckets) this.evict(nowMs);
      bucket = { tokens: perMinute, updatedMs: nowMs };
      this.buckets.set(key, bucket);
    } else {
      // A clock that steps backwards refills nothing rather than draining the bucket.
      const elapsedMs = Math.max(0, nowMs - bucket.updatedMs);
      bucket.tokens = Math.min(perMinute, bucket.tokens + (elapsedMs * perMinute) / MS_PER_MINUTE);
      bucket.updatedMs = Math.max(bucket.updatedMs, nowMs);
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Number of buckets held. */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Drops buckets idle for a minute, which are full again because a bucket
   * refills its whole capacity per minute; if that frees nothing, drops the
   * oldest half.
   * NOTE: dropping a drained bucket lets its principal burst again; this
   * only happens after more than `maxBuckets` distinct keys were seen.
   */
  private evict(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      if (nowMs - bucket.updatedMs >= MS_PER_MINUTE) this.buckets.delete(key);
    }
    if (this.buckets.size < this.maxBuckets) return;
    let toDrop = Math.ceil(this.buckets.size / 2);
    for (const key of this.buckets.keys()) {
      if (toDrop-- <= 0) break;
      this.buckets.delete(key);
    }
  }
}
