// Runs every benchmark (or the ones named on the command line) in one
// process, one after another, and prints each figure with its budget.
// Usage: node --import tsx bench/run.ts [--seconds N] [name ...]
import "reflect-metadata";
import { existsSync } from "node:fs";
import type { BenchResult } from "./result.js";

type BenchRunner = (options: { seconds: number }) => Promise<BenchResult>;

const BENCHES: Record<string, { module: string; exportName: string }> = {
  issuance: { module: "./issuance.ts", exportName: "runIssuanceBench" },
  session: { module: "./session.ts", exportName: "runSessionBench" },
  policy: { module: "./policy.ts", exportName: "runPolicyBench" },
  audit: { module: "./audit.ts", exportName: "runAuditBench" },
  query: { module: "./query.ts", exportName: "runQueryBench" },
  "grpc-floor": { module: "./grpc-floor.ts", exportName: "runGrpcFloorBench" },
  streams: { module: "./streams.ts", exportName: "runStreamsBench" },
  revocation: { module: "./revocation.ts", exportName: "runRevocationBench" },
  export: { module: "./export.ts", exportName: "runExportBench" },
};

function parseArgs(argv: string[]): { seconds: number; names: string[] } {
  let seconds = 3;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--seconds") seconds = Number(argv[++i]);
    else names.push(argv[i]);
  }
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`--seconds must be a positive number, got ${seconds}`);
  for (const name of names) if (!(name in BENCHES)) throw new Error(`unknown benchmark "${name}"; choose from ${Object.keys(BENCHES).join(", ")}`);
  return { seconds, names: names.length > 0 ? names : Object.keys(BENCHES) };
}

async function main(): Promise<number> {
  const { seconds, names } = parseArgs(process.argv.slice(2));
  let failed = 0;
  for (const name of names) {
    const entry = BENCHES[name];
    const path = new URL(entry.module, import.meta.url);
    if (!existsSync(path)) {
      console.log(`\n## ${name}: not built yet (${entry.module} is missing)`);
      continue;
    }
    const module = (await import(path.href)) as Record<string, BenchRunner>;
    console.log(`\n## ${name}`);
    const result = await module[entry.exportName]({ seconds });
    for (const [figure, value] of Object.entries(result.figures)) console.log(`  ${figure.padEnd(58)} ${formatNumber(value)}`);
    for (const budget of result.budgets) {
      if (!budget.ok) failed++;
      console.log(`  budget ${budget.name.padEnd(51)} ${formatNumber(budget.value)} vs ${formatNumber(budget.limit)}  ${budget.ok ? "met" : "NOT MET"}`);
    }
  }
  console.log(`\n${failed === 0 ? "all budgets met" : `${failed} budget(s) not met`}`);
  return failed === 0 ? 0 : 1;
}

function formatNumber(value: number): string {
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

process.exit(await main());
