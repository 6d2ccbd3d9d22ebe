/**
 * Durable audit append throughput with group commit. Many concurrent
 * appenders each append one record at a time and wait for its
 * acknowledgement (after write and fdatasync), as hubs do per query. The
 * log runs with its defaults: a signed checkpoint every 1,000 records and
 * 64 MiB segments, in a temporary directory under os.tmpdir().
 *
 * Run alone: node --import tsx bench/audit.ts [seconds]
 * AUDIT_BENCH_APPENDERS=256,1024 picks other appender counts (default 1,64,256).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { AuditLog } from "../services/audit/log.js";
import type { AuditRecordInput } from "../services/audit/log.js";
import type { BenchResult } from "./result.js";

/** Minimum acknowledged durable records per second with many concurrent appenders. */
export const MIN_DURABLE_APPENDS_PER_SECOND = 20_000;

/** Concurrent appenders in the budgeted phase; a busy hub has about this many queries in flight. */
const BUDGET_APPENDERS = 256;
const PARAMS_KEY = Buffer.alloc(32, 1);

function record(i: number): AuditRecordInput {
  return {
    event: "query.completed",
    requestId: (0x100000 + i).toString(16),
    tenant: "acme",
    callerSpiffeId: "spiffe://operator.example/service/billing",
    callerSerial: "5f3a9c",
    clientSpiffeId: "spiffe://acme.tenants.operator.example/client/site-1",
    clientSerial: "7e21b0",
    relayId: "relay-1",
    dataset: "orders",
    queryId: "orders_by_customer",
    sqlSha256: "a".repeat(64),
    paramsRawJson: JSON.stringify({ customer_id: `cust-${i}`, since: "2026-01-01" }),
    decision: "allow",
    rule: "billing-reads-orders",
    policyVersion: 7n,
    outcome: "ok",
    rows: 42n,
    bytes: 8192n,
    latencyMs: 12,
    resultSha256: "b".repeat(64),
    clientSignature: Buffer.alloc(72, 3),
  };
}

interface PhaseResult {
  perSecond: number;
  recordsPerBatch: number;
  p50Ms: number;
  p99Ms: number;
}

async function runPhase(appenders: number, seconds: number): Promise<PhaseResult> {
  const dir = await mkdtemp(join(tmpdir(), "ewii-audit-bench-"));
  const log = await AuditLog.open(dir, { paramsKey: PARAMS_KEY });
  const latenciesMs: number[] = [];
  let next = 0;
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: appenders }, async () => {
        while (performance.now() < deadline) {
          const sent = performance.now();
          await log.append([record(next++)]);
          latenciesMs.push(performance.now() - sent);
        }
      }),
    );
    const elapsedSeconds = (performance.now() - start) / 1000;
    const stats = log.stats;
    latenciesMs.sort((a, b) => a - b);
    return {
      perSecond: stats.records / elapsedSeconds,
      recordsPerBatch: stats.records / Math.max(1, stats.batches),
      p50Ms: latenciesMs[Math.floor(latenciesMs.length * 0.5)] ?? 0,
      p99Ms: latenciesMs[Math.floor(latenciesMs.length * 0.99)] ?? 0,
    };
  } finally {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Measures acknowledged durable appends per second at 1, 64 and 256 concurrent appenders. */
export async function runAuditBench(options: { seconds: number }): Promise<BenchResult> {
  const figures: Record<string, number> = {};
  for (const appenders of (process.env.AUDIT_BENCH_APPENDERS ?? `1,64,${BUDGET_APPENDERS}`).split(",").map(Number)) {
    const phase = await runPhase(appenders, options.seconds);
    figures[`durable_appends_per_s_${appenders}_appenders`] = Math.round(phase.perSecond);
    figures[`records_per_fdatasync_${appenders}_appenders`] = Math.round(phase.recordsPerBatch * 10) / 10;
    figures[`ack_latency_p50_ms_${appenders}_appenders`] = Math.round(phase.p50Ms * 100) / 100;
    figures[`ack_latency_p99_ms_${appenders}_appenders`] = Math.round(phase.p99Ms * 100) / 100;
  }
  const budgeted = figures[`durable_appends_per_s_${BUDGET_APPENDERS}_appenders`];
  return {
    name: "audit",
    figures,
    budgets: [
      {
        name: `durable_appends_per_s_${BUDGET_APPENDERS}_appenders`,
        value: budgeted,
        limit: MIN_DURABLE_APPENDS_PER_SECOND,
        ok: budgeted >= MIN_DURABLE_APPENDS_PER_SECOND,
      },
    ],
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.argv[2] ?? "3");
  const result = await runAuditBench({ seconds });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
  for (const budget of result.budgets) console.log(`budget ${budget.name} >= ${budget.limit}: ${budget.value} ${budget.ok ? "ok" : "FAILED"}`);
}
