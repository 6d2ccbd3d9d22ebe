/**
 * Policy decision time. It compiles the demo policy plus 1,000 extra rules
 * (per-service allows with parameter conditions, per-caller denies, and
 * wildcard-tenant rules with time windows) and times single `evaluate`
 * calls over a mix of allowed, denied and unknown-query requests, with rate
 * limiting on.
 *
 * Run alone: node --import tsx bench/policy.ts [seconds]
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import type { Value } from "../gen/ewii/tunnel/v1/tunnel.js";
import { compilePolicy } from "../services/policy/compile.js";
import { parsePolicy } from "../services/policy/document.js";
import { evaluate, type EvaluationRequest } from "../services/policy/evaluate.js";
import { RateLimiter } from "../services/policy/rate-limit.js";

/** Largest p99 decision time the hub can afford, in microseconds. */
export const MAX_P99_DECISION_US = 20;

/** Rules added to the demo policy. */
const EXTRA_RULES = 1000;

/** Decisions timed per clock check of the deadline. */
const BATCH = 256;

/** Simulated time between decisions, in milliseconds: slow enough that the demo's 600-per-minute limit keeps allowing. */
const SIMULATED_STEP_MS = 100;

export interface BenchResult {
  name: string;
  figures: Record<string, number>;
  budgets: { name: string; value: number; limit: number; ok: boolean }[];
}

const DEMO_POLICY_PATH = fileURLToPath(new URL("../examples/policy/demo.yaml", import.meta.url));

function extraRules(count: number): unknown[] {
  const rules: unknown[] = [];
  for (let i = 0; i < count; i++) {
    switch (i % 4) {
      case 0:
      case 1:
        rules.push({
          name: `allow-service-${i}`,
          effect: "allow",
          principals: [`spiffe://operator.example/service/svc-${i}/`],
          tenants: [`tenant-${i % 50}`],
          datasets: ["chinook"],
          queries: ["customer_invoices"],
          conditions: { params: { customer_id: { min: 1, max: 1 + (i % 59) } }, max_rows: 100 },
        });
        break;
      case 2:
        rules.push({
          name: `deny-blocked-${i}`,
          effect: "deny",
          principals: [`spiffe://operator.example/caller/blocked-${i}`],
          tenants: ["acme"],
          datasets: ["*"],
          queries: ["*"],
        });
        break;
      default:
        rules.push({
          name: `allow-team-${i}`,
          effect: "allow",
          principals: [`spiffe://operator.example/caller/team-${i}/`, "spiffe://operator.example/caller/"],
          tenants: ["*"],
          datasets: ["chinook"],
          queries: ["revenue_by_country", "top_tracks_by_genre"],
          conditions: { time_window: { days: ["mon", "tue", "wed", "thu", "fri"], start: "06:00", end: "22:00", timezone: "UTC" }, rate_limit: { per_minute: 60 } },
        });
    }
  }
  return rules;
}

function percentile(sorted: Float64Array, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

export async function runPolicyBench(options: { seconds: number }): Promise<BenchResult> {
  const demo = parse(readFileSync(DEMO_POLICY_PATH, "utf8")) as { rules: unknown[] };
  demo.rules.push(...extraRules(EXTRA_RULES));
  const policy = compilePolicy(parsePolicy(stringify(demo), "bench-policy.yaml"), 1);
  const limiter = new RateLimiter();

  const caller = "spiffe://operator.example/caller/reports";
  const int = (value: number): Value => ({ intValue: BigInt(value) });
  const requests: EvaluationRequest[] = [
    { principal: caller, tenant: "acme", dataset: "chinook", queryId: "revenue_by_country", params: {} },
    { principal: caller, tenant: "acme", dataset: "chinook", queryId: "customer_invoices", params: { customer_id: int(7) } },
    { principal: caller, tenant: "acme", dataset: "chinook", queryId: "top_tracks_by_genre", params: { genre: { stringValue: "Rock" }, limit: int(10) } },
    { principal: caller, tenant: "acme", dataset: "chinook", queryId: "employee_list", params: {} },
    { principal: caller, tenant: "acme", dataset: "chinook", queryId: "no_such_query", params: {} },
    { principal: "spiffe://operator.example/service/svc-8/worker", tenant: "tenant-8", dataset: "chinook", queryId: "customer_invoices", params: { customer_id: int(5) } },
    { principal: "spiffe://operator.example/caller/blocked-2", tenant: "acme", dataset: "chinook", queryId: "revenue_by_country", params: {} },
  ];

  // Warm-up lets V8 optimize the evaluator before timing.
  let nowMs = Date.parse("2026-01-07T09:00:00Z");
  for (let i = 0; i < 50_000; i++) evaluate(policy, requests[i % requests.length], new Date(nowMs), limiter);

  const samples: number[] = [];
  let allowed = 0;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(options.seconds * 1e9));
  let index = 0;
  while (process.hrtime.bigint() < deadline) {
    for (let i = 0; i < BATCH; i++, index++) {
      nowMs += SIMULATED_STEP_MS;
      const request = requests[index % requests.length];
      const now = new Date(nowMs);
      const start = process.hrtime.bigint();
      const decision = evaluate(policy, request, now, limiter);
      const elapsedNs = process.hrtime.bigint() - start;
      samples.push(Number(elapsedNs) / 1000);
      if (decision.effect === "allow") allowed++;
    }
  }

  const sorted = Float64Array.from(samples).sort();
  const figures = {
    rules: demo.rules.length,
    decisions: sorted.length,
    allowed_fraction: Math.round((allowed / sorted.length) * 1000) / 1000,
    p50_us: Math.round(percentile(sorted, 0.5) * 100) / 100,
    p99_us: Math.round(percentile(sorted, 0.99) * 100) / 100,
    p999_us: Math.round(percentile(sorted, 0.999) * 100) / 100,
  };
  return {
    name: "policy",
    figures,
    budgets: [{ name: "p99_us", value: figures.p99_us, limit: MAX_P99_DECISION_US, ok: figures.p99_us <= MAX_P99_DECISION_US }],
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.argv[2] ?? "2");
  const result = await runPolicyBench({ seconds });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
  for (const budget of result.budgets) console.log(`budget ${budget.name} <= ${budget.limit}: ${budget.value} ${budget.ok ? "ok" : "FAILED"}`);
}
