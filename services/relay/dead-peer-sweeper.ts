/**
 * One timer that closes every client stream silent past the dead-peer
 * timeout. A timer per stream costs a Timeout object and a closure for each
 * of thousands of idle streams, while this sweep visits each stream once
 * per period.
 */

/** A watched stream: the time of its last message and what to do when it is silent too long. */
export interface WatchedPeer {
  lastSeenMs: number;
  /** Called once, with how long the stream was silent, in milliseconds; the stream is no longer watched. */
  onDead(silentMs: number): void;
}

export interface DeadPeerSweeperOptions {
  /** A stream silent for longer than this is dead, in milliseconds. */
  deadPeerTimeoutMs: number;
  now: () => number;
}

/** Smallest sweep period, in milliseconds, so a short timeout does not busy the event loop. */
const MIN_SWEEP_PERIOD_MS = 100;

export class DeadPeerSweeper {
  private readonly watched = new Set<WatchedPeer>();
  private timer: NodeJS.Timeout | undefined;
  /** A stream is closed between the timeout and the timeout plus this period, in milliseconds. */
  readonly periodMs: number;

  constructor(private readonly options: DeadPeerSweeperOptions) {
    this.periodMs = Math.max(MIN_SWEEP_PERIOD_MS, Math.floor(options.deadPeerTimeoutMs / 4));
  }

  watch(peer: WatchedPeer): void {
    this.watched.add(peer);
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.periodMs);
      this.timer.unref();
    }
  }

  unwatch(peer: WatchedPeer): void {
    this.watched.delete(peer);
    if (this.watched.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private sweep(): void {
    const now = this.options.now();
    const dead: Array<[WatchedPeer, number]> = [];
    for (const peer of this.watched) {
      const silentMs = now - peer.lastSeenMs;
      if (silentMs > this.options.deadPeerTimeoutMs) dead.push([peer, silentMs]);
    }
    // The callbacks run after the scan because they end streams, which unwatches them.
    for (const [peer, silentMs] of dead) {
      this.unwatch(peer);
      peer.onDead(silentMs);
    }
  }
}
