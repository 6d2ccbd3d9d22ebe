/**
 * Revocation propagation: the time from `Revoke` returning to the revoked
 * client's stream being closed, as the client observes it, and to the
 * revocation being in each hub-side deny set. One process runs a real CA
 * (SQLite, gRPC over mTLS) publishing on its own redis-server, four real
 * relays subscribed over Redis, many real client links (one enrolled SVID
 * and one stream each, spread round-robin over the relays) and two
 * followers on Redis standing in for hubs. A close or deny-set update seen
 * before Revoke returns counts as 0 ms, because the CA publishes before it
 * replies.
 *
 * NOTE: this is one Node process on the machine it runs on, not four relay
 * processes and two hubs; the hub figure is the time until a hub's deny
 * set refuses the client, not an ExecuteQuery refused end to end.
 *
 * With Redis restarted just before a burst, the first revocations of the
 * burst arrive through the reconnect catch-up, so ioredis's reconnect
 * delay (10 ms more per attempt, see redis-connection.ts) bounds them.
 *
 * Run alone: node --import tsx bench/revocation.ts [seconds]
 * REVOCATION_BENCH_CLIENTS sets the number of client streams (default 1000).
 */
import "reflect-metadata";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { callUnary } from "../services/core/grpc/index.js";
import type { RunningRelay } from "../services/relay/server.js";
import { RevocationFixture, type TestFollower } from "../test/revocation/fixture.js";
import { operatorBundle, startTestRelay, TestClientLink } from "../test/revocation/relay-client.js";
import { waitUntil } from "../test/revocation/redis-server.js";
import type { BenchResult } from "./result.js";

/** Budget for the 99th percentile of Revoke-to-stream-closed, in milliseconds. */
export const MAX_P99_CLOSE_MS = 100;
const RELAYS = 4;
const HUB_FOLLOWERS = 2;
/** Revocations measured one at a time with Redis up. */
const STEADY_REVOCATIONS = 200;
const BURSTS = 5;
const BURST_SIZE = 40;

interface Client {
  spiffeId: string;
  link: TestClientLink;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** Measures propagation with Redis up, then with Redis restarted before each burst. */
export async function runRevocationBench(options: { seconds: number }): Promise<BenchResult> {
  const clientCount = Number(process.env.REVOCATION_BENCH_CLIENTS ?? "1000");
  if (clientCount < STEADY_REVOCATIONS + BURSTS * BURST_SIZE) throw new TypeError(`REVOCATION_BENCH_CLIENTS must be at least ${STEADY_REVOCATIONS + BURSTS * BURST_SIZE}`);
  const fixture = await RevocationFixture.start();
  const relays: RunningRelay[] = [];
  const clients: Client[] = [];
  try {
    await fixture.ca.createTenant("acme");
    for (let i = 0; i < RELAYS; i++) relays.push(await startTestRelay(fixture.ca, fixture.ca_running!.port, `relay-${i + 1}`, { redisUrl: fixture.redis.url }));
    const hubs: TestFollower[] = [];
    for (let i = 0; i < HUB_FOLLOWERS; i++) {
      const hub = await fixture.follower({ pollIntervalMs: 2_000 });
      hubs.push(hub);
    }
    const bundle = operatorBundle(fixture.ca);
    const setupStart = performance.now();
    for (let i = 0; i < clientCount; i++) {
      const enrolled = await fixture.ca.enroll(await fixture.ca.token("acme", `/client/bench-${i}`));
      const relay = relays[i % RELAYS];
      clients.push({ spiffeId: enrolled.spiffeId, link: new TestClientLink(`127.0.0.1:${relay.port}`, enrolled.tls, bundle) });
    }
    await waitUntil("every client stream", () => relays.reduce((n, relay) => n + relay.core.listClients().length, 0) === clientCount, 600_000);
    const setupSeconds = (performance.now() - setupStart) / 1000;

    const admin = fixture.ca.admin();
    let next = 0;
    const revokeOne = async (): Promise<{ client: Client; sequence: number; returnedAt: number }> => {
      const client = clients[next++];
      const response = await callUnary(admin.revoke.bind(admin), { target: { spiffeId: client.spiffeId }, reason: "bench" });
      return { client, sequence: Number(response.revocation!.sequence), returnedAt: performance.now() };
    };
    const closedAt = (client: Client): number | undefined => client.link.transitions.find((t) => t.to === "backoff" && /revoked/.test(t.reason))?.atMs;
    const hubsHave = (sequence: number): boolean => hubs.every((hub) => hub.denySet.sequence >= sequence);
    const measure = async (done: { client: Client; sequence: number; returnedAt: number }[], closeMs: number[], hubMs: number[]): Promise<void> => {
      for (const item of done) {
        await waitUntil("the revoked stream to close", () => closedAt(item.client) !== undefined, 30_000);
        await waitUntil("the hub deny sets", () => hubsHave(item.sequence), 30_000);
        item.client.link.stop();
        closeMs.push(Math.max(0, closedAt(item.client)! - item.returnedAt));
        const hubAppliedAt = Math.max(...hubs.map((hub) => hub.appliedAtMs.get(item.sequence) ?? item.returnedAt));
        hubMs.push(Math.max(0, hubAppliedAt - item.returnedAt));
      }
    };

    const steadyClose: number[] = [];
    const steadyHub: number[] = [];
    const deadline = performance.now() + options.seconds * 1000;
    for (let i = 0; i < STEADY_REVOCATIONS || (performance.now() < deadline && next < clientCount - BURSTS * BURST_SIZE); i++) {
      await measure([await revokeOne()], steadyClose, steadyHub);
    }

    const restartClose: number[] = [];
    const restartHub: number[] = [];
    for (let burst = 0; burst < BURSTS; burst++) {
      await fixture.redis.stop();
      await fixture.redis.start();
      const done = [];
      for (let i = 0; i < BURST_SIZE; i++) done.push(await revokeOne());
      await measure(done, restartClose, restartHub);
    }

    steadyClose.sort((a, b) => a - b);
    steadyHub.sort((a, b) => a - b);
    restartClose.sort((a, b) => a - b);
    restartHub.sort((a, b) => a - b);
    const figures: Record<string, number> = {
      client_streams: clientCount,
      relays: RELAYS,
      hub_followers: HUB_FOLLOWERS,
      setup_seconds: round(setupSeconds),
      steady_revocations: steadyClose.length,
      steady_close_p50_ms: round(percentile(steadyClose, 50)),
      steady_close_p99_ms: round(percentile(steadyClose, 99)),
      steady_hub_p50_ms: round(percentile(steadyHub, 50)),
      steady_hub_p99_ms: round(percentile(steadyHub, 99)),
      restart_revocations: restartClose.length,
      restart_close_p50_ms: round(percentile(restartClose, 50)),
      restart_close_p99_ms: round(percentile(restartClose, 99)),
      restart_hub_p50_ms: round(percentile(restartHub, 50)),
      restart_hub_p99_ms: round(percentile(restartHub, 99)),
    };
    return {
      name: "revocation",
      figures,
      budgets: [
        { name: "steady_close_p99_ms", value: figures.steady_close_p99_ms, limit: MAX_P99_CLOSE_MS, ok: figures.steady_close_p99_ms <= MAX_P99_CLOSE_MS },
        { name: "steady_hub_p99_ms", value: figures.steady_hub_p99_ms, limit: MAX_P99_CLOSE_MS, ok: figures.steady_hub_p99_ms <= MAX_P99_CLOSE_MS },
        { name: "restart_close_p99_ms", value: figures.restart_close_p99_ms, limit: MAX_P99_CLOSE_MS, ok: figures.restart_close_p99_ms <= MAX_P99_CLOSE_MS },
      ],
    };
  } finally {
    for (const client of clients) client.link.stop();
    for (const relay of relays) await relay.close();
    await fixture.dispose();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.argv[2] ?? "5");
  const result = await runRevocationBench({ seconds });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
  for (const budget of result.budgets) console.log(`budget ${budget.name} <= ${budget.limit}: ${budget.value} ${budget.ok ? "ok" : "FAILED"}`);
  process.exit(0);
}
