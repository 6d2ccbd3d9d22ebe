import { SessionErrorCode, sessionError } from "./errors.js";

/** Default cap on remembered handshake nonces; at about 1,000 handshakes per second it covers a minute of them. */
export const DEFAULT_REPLAY_CACHE_MAX_ENTRIES = 100_000;

/**
 * Handshake nonces seen recently, shared by all handshakes of one process.
 * A handshake is accepted only while its timestamp is within the allowed
 * clock skew of the local clock. So a nonce is kept only for as long as a
 * replay of it could still pass that check, and the caller passes that time
 * as `retainMs`.
 *
 * When the cache is full it rejects new handshakes (fail closed) instead of
 * forgetting nonces that a replay could reuse.
 */
export class HandshakeReplayCache {
  readonly maxEntries: number;
  private readonly expiresAtMsByNonce = new Map<string, number>();

  constructor(options: { maxEntries?: number } = {}) {
    this.maxEntries = options.maxEntries ?? DEFAULT_REPLAY_CACHE_MAX_ENTRIES;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new TypeError(`maxEntries must be a positive integer, got ${this.maxEntries}`);
  }

  /** Records a nonce; throws ERR_SESSION_HANDSHAKE_REPLAY if it is already recorded. */
  checkAndRemember(nonce: Uint8Array, nowMs: number, retainMs: number): void {
    this.evictExpired(nowMs);
    const key = Buffer.from(nonce).toString("hex");
    if (this.expiresAtMsByNonce.has(key)) {
      throw sessionError(SessionErrorCode.handshakeReplay, "handshake nonce was already used within the allowed clock skew; the handshake is a replay and is rejected");
    }
    if (this.expiresAtMsByNonce.size >= this.maxEntries) {
      throw sessionError(SessionErrorCode.replayCacheFull, `handshake replay cache is full at its maximum of ${this.maxEntries} nonces; retry later or raise maxEntries`);
    }
    this.expiresAtMsByNonce.set(key, nowMs + retainMs);
  }

  get size(): number {
    return this.expiresAtMsByNonce.size;
  }

  /**
   * Drops expired entries from the front. Entries are in insertion order, so
   * with one retain time and a clock that does not go back this drops every
   * expired entry. An entry with a longer retain time can hold back later
   * ones until it expires, which costs memory but never drops a live nonce.
   */
  private evictExpired(nowMs: number): void {
    for (const [key, expiresAtMs] of this.expiresAtMsByNonce) {
      if (expiresAtMs > nowMs) break;
      this.expiresAtMsByNonce.delete(key);
    }
  }
}
