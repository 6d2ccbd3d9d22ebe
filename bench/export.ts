/**
 * SIEM export throughput per sink, with the audit append rate measured in
 * the same run.
 *
 * For each sink type, one audit log in a temporary directory under
 * os.tmpdir() (log defaults: a checkpoint every 1,000 records, 64 MiB
 * segments) and two phases:
 *  - live: 256 concurrent appenders for the given seconds while the sink
 *    exports. Figures: appends/s, entries exported/s during the window and
 *    the lag at its end.
 *  - backlog: a second sink of the same type, with a fresh cursor, exports
 *    the whole log with no appends. Its rate is what the exporter can
 *    sustain, and it is the budgeted figure.
 * TCP sinks send to a local receiver that counts octet-counted frames.
 * File sinks write under the temporary directory, and an entry counts as
 * exported once synced (the persisted cursor).
 *
 * Run alone: node --import tsx bench/export.ts [seconds]
 * EXPORT_BENCH_SINKS=jsonl-file,syslog-tcp picks the sink types
 * (default jsonl-file,syslog-tcp,cef-tcp,ocsf-file).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { SinkSet } from "../services/audit/export/sinks.js";
import { SINK_TYPES, sinkConfigSchema } from "../services/audit/export/sink-config.js";
import type { SinkType } from "../services/audit/export/sink-config.js";
import { AuditLog } from "../services/audit/log.js";
import type { AuditRecordInput } from "../services/audit/log.js";
import { silentLogger } from "../services/core/log.js";
import { FrameReceiver } from "../test/siem/frame-receiver.js";
import type { BenchResult } from "./result.js";

/** Minimum entries exported per second on the budgeted sinks. */
export const MIN_EXPORT_ENTRIES_PER_SECOND = 20_000;
const BUDGETED_SINKS: readonly SinkType[] = ["jsonl-file", "syslog-tcp"];
const DEFAULT_SINKS: readonly SinkType[] = ["jsonl-file", "syslog-tcp", "cef-tcp", "ocsf-file"];

/** Concurrent appenders in the live phase, as in bench/audit.ts. */
const APPENDERS = 256;
/** Maximum wait for a backlog export to finish, in milliseconds. */
const BACKLOG_TIMEOUT_MS = 120_000;
const POLL_MS = 5;
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

/** One sink under measurement and how to count what it has exported. */
interface MeasuredSink {
  sinks: SinkSet;
  exported(): number;
  stop(): Promise<void>;
}

async function startSink(type: SinkType, name: string, log: AuditLog, dir: string): Promise<MeasuredSink> {
  const common = { name, type, batch_entries: 1000 };
  if (type.endsWith("-file")) {
    const sinks = await SinkSet.start({ log, sinks: [sinkConfigSchema.parse({ ...common, path: join(dir, `${name}.out`) })], logger: silentLogger() });
    return { sinks, exported: () => Number(sinks.status()[0].persistedSequence), stop: () => sinks.stop() };
  }
  const receiver = new FrameReceiver({ keepSequences: false });
  const port = await receiver.listen();
  const sinks = await SinkSet.start({ log, sinks: [sinkConfigSchema.parse({ ...common, address: `127.0.0.1:${port}`, confirm_after_ms: 100 })], logger: silentLogger() });
  return {
    sinks,
    exported: () => receiver.frames,
    stop: async () => {
      await sinks.stop();
      await receiver.close();
    },
  };
}

interface SinkFigures {
  appendsPerSecond: number;
  liveExportPerSecond: number;
  lagAtEndEntries: number;
  backlogEntries: number;
  backlogExportPerSecond: number;
}

async function measureSink(type: SinkType, seconds: number): Promise<SinkFigures> {
  const dir = await mkdtemp(join(tmpdir(), "ewii-export-bench-"));
  const log = await AuditLog.open(join(dir, "log"), { paramsKey: PARAMS_KEY });
  try {
    const live = await startSink(type, "live", log, dir);
    let next = 0;
    const start = performance.now();
    const deadline = start + seconds * 1000;
    await Promise.all(
      Array.from({ length: APPENDERS }, async () => {
        while (performance.now() < deadline) await log.append([record(next++)]);
      }),
    );
    const liveSeconds = (performance.now() - start) / 1000;
    const liveExported = live.exported();
    const head = Number(log.head.sequence);
    await live.stop();

    const backlog = await startSink(type, "backlog", log, dir);
    const backlogStart = performance.now();
    while (backlog.exported() < head && performance.now() - backlogStart < BACKLOG_TIMEOUT_MS) await sleep(POLL_MS);
    const backlogSeconds = (performance.now() - backlogStart) / 1000;
    const backlogExported = backlog.exported();
    await backlog.stop();

    return {
      appendsPerSecond: log.stats.records / liveSeconds,
      liveExportPerSecond: liveExported / liveSeconds,
      lagAtEndEntries: head - liveExported,
      backlogEntries: backlogExported,
      backlogExportPerSecond: backlogExported / backlogSeconds,
    };
  } finally {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sinkTypes(): SinkType[] {
  const names = process.env.EXPORT_BENCH_SINKS?.split(",") ?? [...DEFAULT_SINKS];
  for (const name of names) {
    if (!(SINK_TYPES as readonly string[]).includes(name)) throw new Error(`EXPORT_BENCH_SINKS: unknown sink type "${name}"; choose from ${SINK_TYPES.join(", ")}`);
    if (name.endsWith("-tls")) throw new Error(`EXPORT_BENCH_SINKS: ${name} needs TLS files, which this benchmark does not create; use the -tcp type`);
  }
  return names as SinkType[];
}

/** Measures appends/s and export entries/s per sink, live and from a backlog. */
export async function runExportBench(options: { seconds: number }): Promise<BenchResult> {
  const figures: Record<string, number> = {};
  const budgets: BenchResult["budgets"] = [];
  for (const type of sinkTypes()) {
    const result = await measureSink(type, options.seconds);
    figures[`appends_per_s_while_exporting_${type}`] = Math.round(result.appendsPerSecond);
    figures[`live_export_entries_per_s_${type}`] = Math.round(result.liveExportPerSecond);
    figures[`live_lag_at_end_entries_${type}`] = result.lagAtEndEntries;
    figures[`backlog_entries_${type}`] = result.backlogEntries;
    figures[`backlog_export_entries_per_s_${type}`] = Math.round(result.backlogExportPerSecond);
    if (BUDGETED_SINKS.includes(type)) {
      const value = figures[`backlog_export_entries_per_s_${type}`];
      budgets.push({ name: `export_entries_per_s_${type}`, value, limit: MIN_EXPORT_ENTRIES_PER_SECOND, ok: value >= MIN_EXPORT_ENTRIES_PER_SECOND });
    }
  }
  return { name: "export", figures, budgets };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.argv[2] ?? "3");
  const result = await runExportBench({ seconds });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
  for (const budget of result.budgets) console.log(`budget ${budget.name} >= ${budget.limit}: ${budget.value} ${budget.ok ? "ok" : "FAILED"}`);
}
