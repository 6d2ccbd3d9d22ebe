/**
 * Issuance throughput of the real CA on one core. In one run it measures
 * the raw ECDSA P-256 signing rate (the ceiling) and Enroll and Renew
 * through the CA's domain code on its SQLite store (WAL, synchronous=FULL),
 * without the network:
 *   Enroll = join token parse and consume + CSR parse and signature check
 *            + certificate encoding and signing + one committed transaction;
 *   Renew  = issued-SVID and revocation lookups + CSR check + signing
 *            + one committed transaction.
 * Both run once with one commit per request and once through the group
 * commit of the gRPC handlers (services/ca/group-commit.ts), where
 * concurrent requests share one commit. Client-side work (key pairs, CSRs,
 * join tokens) is prepared in untimed batches between the timed ones.
 *
 * Run alone: node --import tsx bench/issuance.ts [seconds per phase]
 */
import "reflect-metadata";
import { sign as signData } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { createIssuanceBenchFixture, type IssuanceBenchFixture } from "../services/ca/index.js";
import { createRootCa } from "../services/core/identity/index.js";
import type { BenchResult } from "./result.js";

/** Minimum SVIDs per second on one core, for Enroll and for Renew through the real CA store. */
export const MIN_ISSUANCE_PER_SECOND = 1000;

/** Requests prepared (untimed) before each timed batch. */
const PREPARED_PER_BATCH = 200;

/** Operations between clock reads in the raw signing loop. */
const SIGN_BATCH = 64;

function rawSignPerSecond(seconds: number): number {
  const notBefore = new Date();
  const ca = createRootCa({ trustDomain: "bench.example", commonName: "bench CA", notBefore, notAfter: new Date(notBefore.getTime() + 86_400_000) });
  const payload = Buffer.alloc(256, 7);
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let count = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < SIGN_BATCH; i++) signData("sha256", payload, ca.privateKey);
    count += SIGN_BATCH;
  }
  return count / ((performance.now() - start) / 1000);
}

/**
 * Alternates untimed `prepare` batches with timed `run` batches until the
 * timed part adds up to `seconds`. Returns operations per timed second and
 * the results of every batch.
 */
async function timedInBatches<P, R>(seconds: number, prepare: () => P[], run: (batch: P[]) => R[] | Promise<R[]>): Promise<{ perSecond: number; results: R[] }> {
  const results: R[] = [];
  let timedMs = 0;
  while (timedMs < seconds * 1000) {
    const batch = prepare();
    if (batch.length === 0) break;
    const start = performance.now();
    results.push(...(await run(batch)));
    timedMs += performance.now() - start;
  }
  return { perSecond: results.length / (timedMs / 1000), results };
}

interface CaRates {
  enroll: number;
  renew: number;
}

/**
 * Times Enroll and then Renew of the enrolled SVIDs. In "sequential" mode
 * each request has its own commit. In "grouped" mode a batch of concurrent
 * requests goes through the group commit of the gRPC handlers.
 */
async function measureCaPath(fixture: IssuanceBenchFixture, seconds: number, mode: "sequential" | "grouped"): Promise<CaRates> {
  const enrolled = await timedInBatches(
    seconds,
    () => Array.from({ length: PREPARED_PER_BATCH }, () => fixture.prepareEnroll()),
    (batch) => (mode === "grouped" ? fixture.enrollGrouped(batch) : batch.map((request) => fixture.enroll(request))),
  );
  let next = 0;
  const serials = enrolled.results;
  const renewed = await timedInBatches(
    seconds,
    () => {
      const batch = serials.slice(next, next + PREPARED_PER_BATCH).map((serial) => fixture.prepareRenew(serial));
      next += batch.length;
      return batch;
    },
    (batch) => (mode === "grouped" ? fixture.renewGrouped(batch) : batch.map((request) => fixture.renew(request))),
  );
  return { enroll: enrolled.perSecond, renew: renewed.perSecond };
}

/** Measures the raw signing ceiling and real Enroll and Renew rates, about `seconds` each. */
export async function runIssuanceBench(options: { seconds: number }): Promise<BenchResult> {
  const rawSign = rawSignPerSecond(options.seconds);
  const dir = mkdtempSync(join(tmpdir(), "ewii-bench-issuance-"));
  let sequential: CaRates;
  let grouped: CaRates;
  const fixture = createIssuanceBenchFixture(join(dir, "ca"));
  try {
    sequential = await measureCaPath(fixture, options.seconds, "sequential");
    grouped = await measureCaPath(fixture, options.seconds, "grouped");
  } finally {
    fixture.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const figures = {
    raw_ecdsa_p256_sign_per_s: Math.round(rawSign),
    ca_enroll_one_commit_each_per_s: Math.round(sequential.enroll),
    ca_renew_one_commit_each_per_s: Math.round(sequential.renew),
    ca_enroll_group_commit_per_s: Math.round(grouped.enroll),
    ca_renew_group_commit_per_s: Math.round(grouped.renew),
  };
  const budget = (name: keyof typeof figures) => ({ name, value: figures[name], limit: MIN_ISSUANCE_PER_SECOND, ok: figures[name] >= MIN_ISSUANCE_PER_SECOND });
  // The budget applies to the path the gRPC handlers take under load: concurrent requests, group-committed.
  return { name: "issuance", figures, budgets: [budget("ca_enroll_group_commit_per_s"), budget("ca_renew_group_commit_per_s")] };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.argv[2] ?? "2");
  const result = await runIssuanceBench({ seconds });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
  for (const budget of result.budgets) console.log(`budget ${budget.name} >= ${budget.limit}: ${budget.value} ${budget.ok ? "ok" : "FAILED"}`);
}
