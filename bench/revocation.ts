/**
 * Revocation propagation: the time from `Revoke` returning to the revoked
 * client's stream being closed, as the client observes it, and to every
 * hub refusing that client.
 *
 * Setup (bench/revocation-stack.ts): this process runs the CA, which
 * publishes on a redis-server of the bench's own, and the policy and audit
 * services. 4 relay processes (services/relay/main.ts) and 2 hub processes
 * (bench/revocation-hub.ts) follow revocations over that Redis. 4 load
 * processes (bench/revocation-load.ts) open the client streams, one grpc-js
 * channel, TLS connection and SVID per stream, spread round-robin over the
 * relays.
 *
 * Observations: a load process stamps the first 'error' or 'end' of a
 * revoked client's stream. A hub process stamps the moment its deny set
 * applies the revocation, from which its session handshake rejects that
 * client. Stamps come from CLOCK_MONOTONIC (`monotonicMs`), which every
 * process on the host shares. A stamp before Revoke returns counts as
 * 0 ms, because the CA publishes before it replies. Revocations are
 * measured one at a time with Redis up, then in bursts issued back to
 * back right after Redis was killed and started again on the same port.
 *
 * Run alone: node --import tsx bench/revocation.ts [seconds]
 * REVOCATION_BENCH_CLIENTS sets the number of client streams (default
 * 10000), REVOCATION_BENCH_LOADERS the number of load processes (default 4).
 */
import "reflect-metadata";
import { fileURLToPath } from "node:url";
import { caClient } from "../services/cli/connect.js";
import { callUnary } from "../services/core/grpc/index.js";
import { waitUntil } from "../test/revocation/redis-server.js";
import type { BenchResult } from "./result.js";
import { monotonicMs } from "./revocation-ipc.js";
import { RevocationStack, type BenchClient } from "./revocation-stack.js";

/** Budget for the 99th percentile of each propagation figure, in milliseconds. */
export const MAX_P99_CLOSE_MS = 100;
const RELAYS = 4;
const HUBS = 2;
const DEFAULT_CLIENTS = 10_000;
const DEFAULT_LOADERS = 4;
/** Revocations measured one at a time with Redis up. */
const STEADY_REVOCATIONS = 200;
const BURSTS = 5;
const BURST_SIZE = 40;
const PROPAGATION_TIMEOUT_MS = 30_000;

interface Revoked {
  client: BenchClient;
  sequence: number;
  returnedAtMs: number;
}

interface Closed {
  atMs: number;
  code: number;
  details: string;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function positiveIntegerEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? String(fallback));
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer, got ${process.env[name]}`);
  return value;
}

/** Close and hub latencies of one case, in milliseconds. */
class Samples {
  readonly closeMs: number[] = [];
  readonly hubMs: number[] = [];

  figures(prefix: string): Record<string, number> {
    this.closeMs.sort((a, b) => a - b);
    this.hubMs.sort((a, b) => a - b);
    return {
      [`${prefix}_revocations`]: this.closeMs.length,
      [`${prefix}_close_p50_ms`]: round(percentile(this.closeMs, 50)),
      [`${prefix}_close_p99_ms`]: round(percentile(this.closeMs, 99)),
      [`${prefix}_close_max_ms`]: round(percentile(this.closeMs, 100)),
      [`${prefix}_hub_p50_ms`]: round(percentile(this.hubMs, 50)),
      [`${prefix}_hub_p99_ms`]: round(percentile(this.hubMs, 99)),
      [`${prefix}_hub_max_ms`]: round(percentile(this.hubMs, 100)),
    };
  }
}

/** Measures propagation with Redis up, then with Redis restarted before each burst. */
export async function runRevocationBench(options: { seconds: number }): Promise<BenchResult> {
  const clientCount = positiveIntegerEnv("REVOCATION_BENCH_CLIENTS", DEFAULT_CLIENTS);
  const loaderCount = positiveIntegerEnv("REVOCATION_BENCH_LOADERS", DEFAULT_LOADERS);
  const revocationsNeeded = STEADY_REVOCATIONS + BURSTS * BURST_SIZE;
  if (clientCount < revocationsNeeded) throw new TypeError(`REVOCATION_BENCH_CLIENTS must be at least ${revocationsNeeded}, got ${clientCount}`);

  const stack = await RevocationStack.start({ relays: RELAYS, hubs: HUBS });
  const admin = caClient(stack.admin);
  try {
    const closed = new Map<string, Closed>();
    const appliedAt = stack.hubs.map(() => new Map<number, number>());
    stack.hubs.forEach((hub, i) =>
      hub.on((reply) => {
        if (reply.type === "applied") appliedAt[i].set(reply.sequence, reply.atMs);
      }),
    );

    const setupStart = monotonicMs();
    let lastProgressMs = 0;
    const opened = await stack.openStreams(clientCount, loaderCount, {
      onProgress: (count) => {
        if (monotonicMs() - lastProgressMs < 5_000) return;
        lastProgressMs = monotonicMs();
        process.stderr.write(`revocation bench: ${count} of ${clientCount} streams open after ${Math.round((lastProgressMs - setupStart) / 1000)} s\n`);
      },
      onClosed: (reply) => closed.set(reply.spiffeId, { atMs: reply.atMs, code: reply.code, details: reply.details }),
    });
    const setupSeconds = (monotonicMs() - setupStart) / 1000;
    if (opened.opened < revocationsNeeded) throw new Error(`only ${opened.opened} of ${clientCount} client streams opened, fewer than the ${revocationsNeeded} revocations need: ${opened.firstError}`);
    const closedBeforeRevocations = closed.size;

    const failed = new Set(opened.failedSpiffeIds);
    const victims = stack.clients.filter((client) => !failed.has(client.spiffeId) && !closed.has(client.spiffeId));
    let next = 0;
    const revokeNext = async (): Promise<Revoked> => {
      const client = victims[next++];
      const response = await callUnary(admin.revoke.bind(admin), { target: { spiffeId: client.spiffeId }, reason: "bench" });
      return { client, sequence: Number(response.revocation!.sequence), returnedAtMs: monotonicMs() };
    };
    let closedForOtherReasons = 0;
    const measure = async (done: Revoked[], samples: Samples): Promise<void> => {
      for (const item of done) {
        await waitUntil(`the stream of ${item.client.spiffeId} to close`, () => closed.has(item.client.spiffeId), PROPAGATION_TIMEOUT_MS);
        await waitUntil(`every hub to apply revocation ${item.sequence}`, () => appliedAt.every((hub) => hub.has(item.sequence)), PROPAGATION_TIMEOUT_MS);
        const close = closed.get(item.client.spiffeId)!;
        if (!/revoked/.test(close.details)) {
          closedForOtherReasons++;
          process.stderr.write(`revocation bench: the stream of revoked ${item.client.spiffeId} closed with code ${close.code}: ${close.details}\n`);
        }
        samples.closeMs.push(Math.max(0, close.atMs - item.returnedAtMs));
        samples.hubMs.push(Math.max(0, Math.max(...appliedAt.map((hub) => hub.get(item.sequence)!)) - item.returnedAtMs));
      }
    };

    const steady = new Samples();
    const deadlineMs = monotonicMs() + options.seconds * 1000;
    for (let i = 0; i < STEADY_REVOCATIONS || (monotonicMs() < deadlineMs && next < victims.length - BURSTS * BURST_SIZE); i++) {
      await measure([await revokeNext()], steady);
    }

    const restart = new Samples();
    for (let burst = 0; burst < BURSTS; burst++) {
      await stack.redis.stop();
      await stack.redis.start();
      const done: Revoked[] = [];
      for (let i = 0; i < BURST_SIZE; i++) done.push(await revokeNext());
      await measure(done, restart);
    }

    // Every revoked client must be in every hub's deny set, matched on its own certificate.
    const revokedClients = victims.slice(0, next);
    for (const hub of stack.hubs) {
      hub.send({ type: "match", subjects: revokedClients.map((client) => ({ ...client, trustDomain: stack.tenantTrustDomain })) });
      const matched = await hub.next("matched");
      if (matched.covered !== matched.total) throw new Error(`a hub's deny set covers only ${matched.covered} of ${matched.total} revoked clients, so that hub would still accept the others`);
    }
    const revokedIds = new Set(revokedClients.map((client) => client.spiffeId));
    const lostWithoutRevocation = [...closed.keys()].filter((id) => !revokedIds.has(id)).length;

    const figures: Record<string, number> = {
      client_streams_requested: clientCount,
      client_streams_open: opened.opened,
      client_streams_failed_to_open: opened.failedSpiffeIds.length,
      client_streams_closed_before_revocations: closedBeforeRevocations,
      client_streams_closed_without_revocation: lostWithoutRevocation,
      revoked_streams_closed_for_other_reasons: closedForOtherReasons,
      relay_processes: RELAYS,
      hub_processes: HUBS,
      load_processes: loaderCount,
      svid_issue_seconds: round(opened.issueSeconds),
      setup_seconds: round(setupSeconds),
      ...steady.figures("steady"),
      ...restart.figures("restart"),
    };
    const budget = (name: string): BenchResult["budgets"][number] => ({ name, value: figures[name], limit: MAX_P99_CLOSE_MS, ok: figures[name] <= MAX_P99_CLOSE_MS });
    return {
      name: "revocation",
      figures,
      budgets: [budget("steady_close_p99_ms"), budget("steady_hub_p99_ms"), budget("restart_close_p99_ms"), budget("restart_hub_p99_ms")],
    };
  } finally {
    admin.close();
    await stack.close();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.argv[2] ?? "5");
  const result = await runRevocationBench({ seconds });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
  for (const budget of result.budgets) console.log(`budget ${budget.name} <= ${budget.limit}: ${budget.value} ${budget.ok ? "ok" : "FAILED"}`);
  process.exit(0);
}
