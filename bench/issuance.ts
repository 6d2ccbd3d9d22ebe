/**
 * Issuance throughput on one core. It measures the raw ECDSA P-256 signing
 * rate, which is the ceiling, and Enroll-shaped work per SVID. That work is
 * parseCsr (DER walk and signature check), issueX509Svid (DER encoding and
 * signing) and one autocommit insert into a better-sqlite3 WAL table.
 *
 * Run alone: node --import tsx bench/issuance.ts [seconds]
 */
import "reflect-metadata";
import { sign as signData } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { SpiffeId, createCsr, createRootCa, generateKeyPair, issueX509Svid, parseCsr } from "../services/core/identity/index.js";

/** Minimum SVIDs per second per core for Enroll-shaped issuance. */
export const MIN_ISSUANCE_PER_SECOND = 1000;

/** Number of distinct client CSRs prepared before timing. The timed loops cycle over them. */
const PREPARED_CSRS = 256;

/** Iterations between clock reads in the timed loops. */
const BATCH = 64;

export interface BenchResult {
  name: string;
  figures: Record<string, number>;
  budgets: { name: string; value: number; limit: number; ok: boolean }[];
}

/** Runs `step` in batches for `seconds` and returns the rate per second. */
function ratePerSecond(seconds: number, step: (i: number) => void): number {
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  let count = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < BATCH; i++) step(count + i);
    count += BATCH;
  }
  return count / ((performance.now() - start) / 1000);
}

function openStore(path: string, synchronous: "NORMAL" | "FULL"): { insert: (serial: string, id: string, notAfterMs: number, der: Buffer) => void; close: () => void } {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${synchronous}`);
  db.exec("CREATE TABLE IF NOT EXISTS svids (serial TEXT PRIMARY KEY, spiffe_id TEXT NOT NULL, not_after_ms INTEGER NOT NULL, cert_der BLOB NOT NULL)");
  const statement = db.prepare("INSERT INTO svids (serial, spiffe_id, not_after_ms, cert_der) VALUES (?, ?, ?, ?)");
  return {
    insert: (serial, id, notAfterMs, der) => {
      statement.run(serial, id, notAfterMs, der);
    },
    close: () => db.close(),
  };
}

/** Measures issuance rates, spending about `seconds` on each of the five phases. */
export async function runIssuanceBench(options: { seconds: number }): Promise<BenchResult> {
  const phaseSeconds = options.seconds;
  const notBefore = new Date();
  const ca = createRootCa({ trustDomain: "bench.example", commonName: "bench CA", notBefore, notAfter: new Date(notBefore.getTime() + 365 * 86_400_000) });
  const csrs = Array.from({ length: PREPARED_CSRS }, () => createCsr(generateKeyPair()));
  const ids = Array.from({ length: PREPARED_CSRS }, (_, i) => SpiffeId.fromParts("bench.example", `/client/site-${i}`));
  const notAfter = new Date(notBefore.getTime() + 86_400_000);
  const payload = Buffer.alloc(256, 7);

  const rawSign = ratePerSecond(phaseSeconds, () => {
    signData("sha256", payload, ca.privateKey);
  });
  const csrParse = ratePerSecond(phaseSeconds, (i) => {
    parseCsr(csrs[i % PREPARED_CSRS]);
  });
  const spkis = csrs.map((csr) => parseCsr(csr).publicKeySpkiDer);
  const issueOnly = ratePerSecond(phaseSeconds, (i) => {
    issueX509Svid({ ca, subjectPublicKeySpkiDer: spkis[i % PREPARED_CSRS], spiffeId: ids[i % PREPARED_CSRS], notBefore, notAfter });
  });

  const dir = mkdtempSync(join(tmpdir(), "ewii-bench-issuance-"));
  const enroll = (synchronous: "NORMAL" | "FULL"): number => {
    const store = openStore(join(dir, `store-${synchronous.toLowerCase()}.db`), synchronous);
    try {
      return ratePerSecond(phaseSeconds, (i) => {
        const { publicKeySpkiDer } = parseCsr(csrs[i % PREPARED_CSRS]);
        const spiffeId = ids[i % PREPARED_CSRS];
        const issued = issueX509Svid({ ca, subjectPublicKeySpkiDer: publicKeySpkiDer, spiffeId, notBefore, notAfter });
        store.insert(issued.serial, spiffeId.toString(), notAfter.getTime(), issued.certDer);
      });
    } finally {
      store.close();
    }
  };
  let enrollNormal: number;
  let enrollFull: number;
  try {
    enrollNormal = enroll("NORMAL");
    enrollFull = enroll("FULL");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const figures = {
    raw_ecdsa_p256_sign_per_s: Math.round(rawSign),
    parse_csr_per_s: Math.round(csrParse),
    issue_x509_svid_per_s: Math.round(issueOnly),
    enroll_issuance_wal_sync_normal_per_s: Math.round(enrollNormal),
    enroll_issuance_wal_sync_full_per_s: Math.round(enrollFull),
  };
  return {
    name: "issuance",
    figures,
    budgets: [
      {
        name: "enroll_issuance_wal_sync_normal_per_s",
        value: figures.enroll_issuance_wal_sync_normal_per_s,
        limit: MIN_ISSUANCE_PER_SECOND,
        ok: figures.enroll_issuance_wal_sync_normal_per_s >= MIN_ISSUANCE_PER_SECOND,
      },
    ],
  };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.argv[2] ?? "2");
  const result = await runIssuanceBench({ seconds });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
  for (const budget of result.budgets) console.log(`budget ${budget.name} >= ${budget.limit}: ${budget.value} ${budget.ok ? "ok" : "FAILED"}`);
}
