/**
 * Query path benchmark: the same SQLite queries through Ewii (caller -> hub
 * -> relay -> client -> SQLite and back, with policy, two durable audit
 * records, the end-to-end session and the signed summary) and through a
 * plain grpc-js mTLS server that runs the SQL with better-sqlite3
 * (bench/query-baseline.ts), in the same run on the same machine.
 *
 * Setup: `startDevStack` with bench/query-policy.yaml (CA, policy, audit,
 * relay, hub and the demo client in this process), a bench client whose
 * allow-list is built from that policy's SQL, and a second hub in a child
 * process (bench/query-hub.ts) with the same credentials. Every Ewii query
 * goes through the child hub; the in-process hub stays idle.
 *
 * Phases:
 *   latency     `customer_invoices customer_id=N` (N cycles over 1..59), one
 *               query in flight, for `seconds` per target: p50 and p99.
 *   throughput  the same query with THROUGHPUT_CONCURRENCY in flight, for
 *               `seconds` per target: queries per second.
 *   hub CPU     queries per hub core: the queries completed in the Ewii
 *               throughput phase divided by the CPU time (user + system,
 *               `process.cpuUsage()` read inside the hub process before and
 *               after the phase) that the hub process used. The hub process
 *               runs nothing but the hub, so all of that time is the hub's.
 *   reference   the plain server of bench/query-baseline.ts alone in a
 *               child process under the throughput phase's load: its CPU
 *               time per query, next to the hub's. No budget applies.
 *   large       `invoice_lines_tracks_repeated`, every invoice line joined
 *               with its track, repeated to about LARGE_RESULT_TARGET_BYTES
 *               of encoded rows; MB/s is the summary's byte count (the
 *               protobuf size of the rows, 10^6 bytes per MB) over the time
 *               from the call to the end of the stream, alternating targets.
 *
 * Run alone: node --import tsx bench/query.ts [seconds]
 * QUERY_BENCH_CONCURRENCY sets the queries in flight of the throughput
 * phase (default 32). QUERY_BENCH_HUB_PROFILE_DIR=DIR writes a V8 CPU
 * profile of the hub process to DIR (node --cpu-prof).
 */
import "reflect-metadata";
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { ExecuteQueryResponse, HubServiceClient } from "../gen/ewii/hub/v1/hub.js";
import type { Value } from "../gen/ewii/tunnel/v1/tunnel.js";
import { hubClient, type CliContext } from "../services/cli/connect.js";
import { credentialsDir } from "../services/cli/home.js";
import { silentLogger } from "../services/core/log.js";
import { loadCredentials } from "../services/core/workload/credentials.js";
import { OPERATOR_TRUST_DOMAIN, REPO_ROOT, startDevStack, type DevStack } from "../services/dev/stack.js";
import { parsePolicy } from "../services/policy/document.js";
import { addClient } from "../test/e2e/helpers.js";
import { startBaselineServer, type BaselineOptions, type BaselineServer } from "./query-baseline.js";
import type { BaselineChildRequest } from "./query-baseline-process.js";
import type { HubChildRequest } from "./query-hub.js";
import type { ServerChildReply } from "./server-child.js";
import type { BenchResult } from "./result.js";

/** Ewii p50 of the small query may be at most this multiple of the plain server's p50. */
export const MAX_SMALL_P50_RATIO = 1.5;
/** Minimum small queries per second per hub core. */
export const MIN_QUERIES_PER_HUB_CORE_SECOND = 2_000;
/** Minimum large-result rate through Ewii as a fraction of the plain server's rate. */
export const MIN_LARGE_RATE_RATIO = 0.8;

const POLICY_FILE = join(REPO_ROOT, "bench/query-policy.yaml");
const CHINOOK_SQLITE = join(REPO_ROOT, "examples/data/chinook.sqlite");
const BENCH_CLIENT_PATH = "/client/bench";
const SMALL_QUERY = "customer_invoices";
const LARGE_QUERY = "invoice_lines_tracks_repeated";
const CUSTOMER_COUNT = 59;
const THROUGHPUT_CONCURRENCY = Number(process.env.QUERY_BENCH_CONCURRENCY ?? 32);
const WARMUP_QUERIES = 300;
const LARGE_RESULT_TARGET_BYTES = 50_000_000;
const LARGE_RUNS_PER_TARGET = 2;
const QUERY_DEADLINE_MS = 120_000;

interface QueryOutcome {
  rows: number;
  bytes: number;
}

/** Runs one ExecuteQuery and counts the rows and the summary's byte count. */
function runQuery(client: HubServiceClient, queryId: string, params: Record<string, Value>): Promise<QueryOutcome> {
  return new Promise((resolve, reject) => {
    let rows = 0;
    let bytes = 0;
    const call = client.executeQuery({ tenant: "acme", client: BENCH_CLIENT_PATH, dataset: "chinook", queryId, params }, { deadline: new Date(Date.now() + QUERY_DEADLINE_MS) });
    call.on("data", (response: ExecuteQueryResponse) => {
      if (response.rows !== undefined) rows += response.rows.rows.length;
      if (response.summary !== undefined) bytes = Number(response.summary.byteCount);
    });
    call.on("error", reject);
    call.on("end", () => resolve({ rows, bytes }));
  });
}

function smallParams(i: number): Record<string, Value> {
  return { customer_id: { intValue: BigInt(1 + (i % CUSTOMER_COUNT)) } };
}

interface LoadResult {
  queries: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Keeps `concurrency` small queries in flight for `seconds` and records each latency. */
async function runLoad(client: HubServiceClient, concurrency: number, seconds: number): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let next = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const sent = performance.now();
        await runQuery(client, SMALL_QUERY, smallParams(next++));
        latenciesMs.push(performance.now() - sent);
      }
    }),
  );
  const elapsedSeconds = (performance.now() - start) / 1000;
  latenciesMs.sort((a, b) => a - b);
  return {
    queries: latenciesMs.length,
    perSecond: latenciesMs.length / elapsedSeconds,
    p50Ms: latenciesMs[Math.floor(latenciesMs.length * 0.5)] ?? 0,
    p99Ms: latenciesMs[Math.floor(latenciesMs.length * 0.99)] ?? 0,
  };
}

/** A server running alone in a child process, so its CPU time can be read. */
class ServerProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly address: string,
  ) {}

  /** Starts the hub of bench/query-hub.ts with the dev stack's hub credentials. */
  static startHub(stack: DevStack): Promise<ServerProcess> {
    const overrides = {
      listen: "127.0.0.1:0",
      credentials_dir: credentialsDir(stack.home, "hub"),
      ca_address: stack.endpoints.ca,
      policy_address: stack.endpoints.policy,
      audit_address: stack.endpoints.audit,
      relays: stack.endpoints.relays,
      operator_trust_domain: OPERATOR_TRUST_DOMAIN,
      log_level: "error",
    };
    return ServerProcess.start("./query-hub.ts", { type: "start", overrides } satisfies HubChildRequest, process.env.QUERY_BENCH_HUB_PROFILE_DIR);
  }

  /** Starts the plain server of bench/query-baseline.ts. */
  static startBaseline(options: BaselineOptions): Promise<ServerProcess> {
    return ServerProcess.start("./query-baseline-process.ts", { type: "start", options } satisfies BaselineChildRequest, undefined);
  }

  private static async start(script: string, startRequest: HubChildRequest | BaselineChildRequest, profileDir: string | undefined): Promise<ServerProcess> {
    const execArgv = profileDir === undefined ? process.execArgv : [...process.execArgv, "--cpu-prof", `--cpu-prof-dir=${profileDir}`];
    const child = fork(fileURLToPath(new URL(script, import.meta.url)), [], { execArgv, stdio: ["ignore", "ignore", "inherit", "ipc"] });
    child.send(startRequest);
    const [reply] = (await once(child, "message")) as [ServerChildReply];
    if (reply.type !== "ready") {
      child.kill();
      throw new Error(`the bench server process ${script} did not start: ${reply.type === "failed" ? reply.message : reply.type}`);
    }
    return new ServerProcess(child, reply.address);
  }

  /** Returns the CPU time the process has used since it started, in seconds. */
  async cpuSeconds(): Promise<number> {
    this.child.send({ type: "cpu" } satisfies HubChildRequest);
    const [reply] = (await once(this.child, "message")) as [ServerChildReply];
    if (reply.type !== "cpu") throw new Error(`expected a cpu reply from the bench server process, got ${reply.type}`);
    return (reply.userMicros + reply.systemMicros) / 1e6;
  }

  async close(): Promise<void> {
    const exited = once(this.child, "exit");
    this.child.send({ type: "close" } satisfies HubChildRequest);
    await exited;
  }
}

/** Reads the SQLite SQL of every catalog query in the bench policy. */
function benchCatalog(): Record<string, { sql: string; params: Record<string, { type: string }> }> {
  const document = parsePolicy(readFileSync(POLICY_FILE, "utf8"), POLICY_FILE);
  const queries: Record<string, { sql: string; params: Record<string, { type: string }> }> = {};
  for (const [id, query] of Object.entries(document.catalog.chinook.queries)) {
    const sql = query.sql.sqlite;
    if (sql === undefined) continue;
    queries[id] = { sql, params: Object.fromEntries(Object.entries(query.params).map(([name, spec]) => [name, { type: spec.type }])) };
  }
  return queries;
}

function callerClient(stack: DevStack, address: string): HubServiceClient {
  const context: CliContext = { ...stack.caller, endpoints: { ...stack.endpoints, hub: address } };
  return hubClient(context);
}

async function measureLarge(ewii: HubServiceClient, plain: HubServiceClient): Promise<{ passes: number; bytes: number; ewiiMBps: number; plainMBps: number }> {
  const onePass = await runQuery(plain, LARGE_QUERY, { passes: { intValue: 1n } });
  const passes = Math.max(1, Math.round(LARGE_RESULT_TARGET_BYTES / onePass.bytes));
  const params = { passes: { intValue: BigInt(passes) } };
  const totals = { ewii: { bytes: 0, ms: 0 }, plain: { bytes: 0, ms: 0 } };
  for (let run = 0; run < LARGE_RUNS_PER_TARGET; run++) {
    for (const [name, client] of [["plain", plain], ["ewii", ewii]] as const) {
      const start = performance.now();
      const outcome = await runQuery(client, LARGE_QUERY, params);
      totals[name].ms += performance.now() - start;
      totals[name].bytes += outcome.bytes;
    }
  }
  const rate = (t: { bytes: number; ms: number }): number => t.bytes / 1e6 / (t.ms / 1000);
  return { passes, bytes: totals.ewii.bytes / LARGE_RUNS_PER_TARGET, ewiiMBps: rate(totals.ewii), plainMBps: rate(totals.plain) };
}

const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;

/** Runs every phase against a fresh stack in a temporary home and returns the figures. */
export async function runQueryBench(options: { seconds: number }): Promise<BenchResult> {
  const home = mkdtempSync(join(tmpdir(), "ewii-query-bench-"));
  const stack = await startDevStack({ home, basePort: 0, logger: silentLogger(), policyFile: POLICY_FILE });
  const closers: (() => Promise<unknown>)[] = [() => stack.close()];
  try {
    const client = await addClient(stack, {
      path: BENCH_CLIENT_PATH,
      dataset: { engine: "sqlite", path: CHINOOK_SQLITE, max_rows: 4_000_000, max_bytes: 256 * 1024 * 1024, statement_timeout_ms: QUERY_DEADLINE_MS, queries: benchCatalog() },
    });
    closers.push(() => client.stop());

    const hub = await ServerProcess.startHub(stack);
    closers.push(() => hub.close());
    const hubCredentials = loadCredentials(credentialsDir(stack.home, "hub"));
    const baselineOptions: BaselineOptions = {
      databasePath: CHINOOK_SQLITE,
      sqlByQueryId: Object.fromEntries(Object.entries(benchCatalog()).map(([id, query]) => [id, query.sql])),
      certChainPem: hubCredentials.certChainPem,
      privateKeyPem: hubCredentials.privateKeyPem,
      trustedCasPem: hubCredentials.operatorBundlePem,
    };
    const baseline: BaselineServer = await startBaselineServer(baselineOptions);
    closers.push(() => baseline.close());

    const ewii = callerClient(stack, hub.address);
    const plain = callerClient(stack, baseline.address);
    closers.push(async () => {
      ewii.close();
      plain.close();
    });

    for (let i = 0; i < WARMUP_QUERIES; i++) {
      await runQuery(plain, SMALL_QUERY, smallParams(i));
      await runQuery(ewii, SMALL_QUERY, smallParams(i));
    }

    const plainLatency = await runLoad(plain, 1, options.seconds);
    const ewiiLatency = await runLoad(ewii, 1, options.seconds);
    const plainLoad = await runLoad(plain, THROUGHPUT_CONCURRENCY, options.seconds);
    const cpuBefore = await hub.cpuSeconds();
    const ewiiLoad = await runLoad(ewii, THROUGHPUT_CONCURRENCY, options.seconds);
    const hubCpuSeconds = (await hub.cpuSeconds()) - cpuBefore;

    // For reference only: the CPU time a plain server spends per query when
    // it runs alone in a process under the same load.
    const plainProcess = await ServerProcess.startBaseline(baselineOptions);
    closers.push(() => plainProcess.close());
    const plainProcessClient = callerClient(stack, plainProcess.address);
    closers.push(async () => plainProcessClient.close());
    for (let i = 0; i < WARMUP_QUERIES; i++) await runQuery(plainProcessClient, SMALL_QUERY, smallParams(i));
    const plainCpuBefore = await plainProcess.cpuSeconds();
    const plainProcessLoad = await runLoad(plainProcessClient, THROUGHPUT_CONCURRENCY, options.seconds);
    const plainCpuSeconds = (await plainProcess.cpuSeconds()) - plainCpuBefore;
    const large = await measureLarge(ewii, plain);

    const p50Ratio = ewiiLatency.p50Ms / plainLatency.p50Ms;
    const perHubCore = ewiiLoad.queries / hubCpuSeconds;
    const largeRatio = large.ewiiMBps / large.plainMBps;
    return {
      name: "query",
      figures: {
        small_p50_ms_plain: round(plainLatency.p50Ms, 3),
        small_p99_ms_plain: round(plainLatency.p99Ms, 3),
        small_p50_ms_ewii: round(ewiiLatency.p50Ms, 3),
        small_p99_ms_ewii: round(ewiiLatency.p99Ms, 3),
        small_p50_ratio: round(p50Ratio),
        [`small_queries_per_s_plain_${THROUGHPUT_CONCURRENCY}_in_flight`]: Math.round(plainLoad.perSecond),
        [`small_queries_per_s_ewii_${THROUGHPUT_CONCURRENCY}_in_flight`]: Math.round(ewiiLoad.perSecond),
        [`small_p50_ms_ewii_${THROUGHPUT_CONCURRENCY}_in_flight`]: round(ewiiLoad.p50Ms, 3),
        [`small_p99_ms_ewii_${THROUGHPUT_CONCURRENCY}_in_flight`]: round(ewiiLoad.p99Ms, 3),
        hub_cpu_seconds: round(hubCpuSeconds, 3),
        small_queries_per_hub_core_second: Math.round(perHubCore),
        hub_cpu_us_per_small_query: Math.round((hubCpuSeconds * 1e6) / ewiiLoad.queries),
        plain_server_cpu_us_per_small_query: Math.round((plainCpuSeconds * 1e6) / plainProcessLoad.queries),
        small_queries_per_plain_server_core_second: Math.round(plainProcessLoad.queries / plainCpuSeconds),
        large_result_mb: round(large.bytes / 1e6, 1),
        large_result_passes: large.passes,
        large_mb_per_s_plain: round(large.plainMBps, 1),
        large_mb_per_s_ewii: round(large.ewiiMBps, 1),
        large_rate_ratio: round(largeRatio),
      },
      budgets: [
        { name: "small_p50_ratio", value: round(p50Ratio), limit: MAX_SMALL_P50_RATIO, ok: p50Ratio <= MAX_SMALL_P50_RATIO },
        { name: "small_queries_per_hub_core_second", value: Math.round(perHubCore), limit: MIN_QUERIES_PER_HUB_CORE_SECOND, ok: perHubCore >= MIN_QUERIES_PER_HUB_CORE_SECOND },
        { name: "large_rate_ratio", value: round(largeRatio), limit: MIN_LARGE_RATE_RATIO, ok: largeRatio >= MIN_LARGE_RATE_RATIO },
      ],
    };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.argv[2] ?? "3");
  const result = await runQueryBench({ seconds });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
  for (const budget of result.budgets) console.log(`budget ${budget.name} ${budget.ok ? "met" : "NOT MET"}: ${budget.value} vs ${budget.limit}`);
}
