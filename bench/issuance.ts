/**
 * Issuance throughput of the real CA on one core. In one run it measures
 * the raw ECDSA P-256 signing rate (the ceiling) and Enroll and Renew
 * through the CA's domain code on its SQLite store (WAL, synchronous=FULL),
 * without the network:
 *   Enroll = join token parse and consume + CSR parse and signature check
 *            + certificate encoding and signing + one committed transaction;
 *   Renew  = issued-SVID and revocation lookups + CSR check + signing
 *            + one committed transaction.
 * Client-side work (key pairs, CSRs, join tokens) is prepared in untimed
 * batches between the timed ones.
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
 * timed part adds up to `seconds`; returns operations per timed second and
 * the results of every `run`.
 */
function timedInBatches<P, R>(seconds: number, prepare: () => P[], run: (request: P) => R): { perSecond: number; results: R[] } {
  const results: R[] = [];
  let timedMs = 0;
  while (timedMs < seconds * 1000) {
    const batch = prepare();
    if (batch.length === 0) break;
    const start = performance.now();
    for (const request of batch) results.push(run(request));
    timedMs += performance.now() - start;
  }
  return { perSecond: results.length / (timedMs / 1000), results };
}

function measureCaPath(fixture: IssuanceBenchFixture, seconds: number): { enroll: number; renew: number } {
  const enrolled = timedInBatches(
    seconds,
    () => Array.from({ length: PREPARED_PER_BATCH }, () => fixture.prepareEnroll()),
    (request) => fixture.enroll(request),
  );
  let next = 0;
  const serials = enrolled.results;
  const renewed = timedInBatches(
    seconds,
    () => {
      const batch = serials.slice(next, next + PREPARED_PER_BATCH).map((serial) => fixture.prepareRenew(serial));
      next += batch.length;
      return batch;
    },
    (request) => fixture.renew(request),
  );
  return { enroll: enrolled.perSecond, renew: renewed.perSecond };
}

/** Measures the raw signing ceiling and real Enroll and Renew rates, about `seconds` each. */
export async function runIssuanceBench(options: { seconds: number }): Promise<BenchResult> {
  const rawSign = rawSignPerSecond(options.seconds);
  const dir = mkdtempSync(join(tmpdir(), "ewii-bench-issuance-"));
  let rates: { enroll: number; renew: number };
  const fixture = createIssuanceBenchFixture(join(dir, "ca"));
  try {
    rates = measureCaPath(fixture, options.seconds);
  } finally {
    fixture.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const figures = {
    raw_ecdsa_p256_sign_per_s: Math.round(rawSign),
    ca_enroll_per_s: Math.round(rates.enroll),
    ca_renew_per_s: Math.round(rates.renew),
  };
  return {
    name: "issuance",
    figures,
    budgets: [
      { name: "ca_enroll_per_s", value: figures.ca_enroll_per_s, limit: MIN_ISSUANCE_PER_SECOND, ok: figures.ca_enroll_per_s >= MIN_ISSUANCE_PER_SECOND },
      { name: "ca_renew_per_s", value: figures.ca_renew_per_s, limit: MIN_ISSUANCE_PER_SECOND, ok: figures.ca_renew_per_s >= MIN_ISSUANCE_PER_SECOND },
    ],
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.argv[2] ?? "2");
  const result = await runIssuanceBench({ seconds });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
  for (const budget of result.budgets) console.log(`budget ${budget.name} >= ${budget.limit}: ${budget.value} ${budget.ok ? "ok" : "FAILED"}`);
}
