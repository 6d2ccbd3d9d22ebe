/**
 * Messages between bench/revocation.ts and its child processes
 * (bench/revocation-load.ts and bench/revocation-hub.ts), and the clock
 * they all stamp events with.
 */

/**
 * Milliseconds on the host's monotonic clock. `process.hrtime` reads
 * CLOCK_MONOTONIC through libuv on Linux, one clock for every process on
 * the host, so stamps taken in different processes compare directly.
 * `performance.now()` does not: each process counts from its own start.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** One client stream to open: its own SPIFFE ID and certificate, on one relay. */
export interface LoadStream {
  spiffeId: string;
  certPem: string;
  relayAddress: string;
}

export type LoadRequest = {
  type: "open";
  operatorTrustDomain: string;
  operatorBundlePem: string;
  /** Private key shared by every certificate in `streams`. */
  privateKeyPem: string;
  streams: LoadStream[];
  /** Streams opened at the same time. */
  concurrency: number;
  heartbeatIntervalMs: number;
};

export type LoadReply =
  | { type: "progress"; opened: number; failed: number }
  | { type: "opened"; opened: number; failedSpiffeIds: string[]; firstError: string }
  /** A stream that was open ended: `atMs` is the monotonic time its 'error' or 'end' event arrived. */
  | { type: "closed"; spiffeId: string; atMs: number; code: number; details: string };

export type HubRequest =
  | { type: "start"; overrides: Record<string, unknown> }
  /** Checks whether the hub's deny set covers each subject; the reply counts those it covers. */
  | { type: "match"; subjects: { spiffeId: string; trustDomain: string; serial: string; notBeforeMs: number }[] }
  | { type: "close" };

export type HubReply =
  | { type: "ready"; address: string }
  | { type: "failed"; message: string }
  /** The hub's deny set applied `sequence` at monotonic time `atMs`. */
  | { type: "applied"; sequence: number; atMs: number }
  | { type: "matched"; covered: number; total: number };
