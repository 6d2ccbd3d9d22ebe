import { execFileSync } from "node:child_process";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { silentLogger } from "../../services/core/log.js";
import { clientConfigSchema, loadClientConfig } from "../../services/client/config.js";
import type { DatasetExecutor, ExecutionRequest, ExecutionResult } from "../../services/client/query/executor.js";
import { QueryHandler } from "../../services/client/query/handler.js";
import { sqlSha256 } from "../../services/policy/sql-hash.js";
import type { QueryRequest, ResultColumns, ResultSummary, Row, SessionMessage, Value } from "../../gen/ewii/tunnel/v1/tunnel.js";

export const CHINOOK_SQLITE = new URL("../../examples/data/chinook.sqlite", import.meta.url).pathname;
const CHINOOK_POSTGRES_SCRIPT = "/work/shared/datasets/chinook/Chinook_PostgreSql.sql";
const PG_ADMIN = ["-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"];

export interface TestKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function testKeys(): TestKeys {
  return generateKeyPairSync("ec", { namedCurve: "prime256v1" });
}

/** Writes a client config with one dataset to a temp dir and loads it. */
export function writeConfig(dataset: Record<string, unknown>, name = "chinook"): { file: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "ewii-client-query-"));
  const file = join(dir, "client.yaml");
  writeFileSync(file, stringify({ identity_dir: "identity", ca: "127.0.0.1:7440", relays: ["127.0.0.1:7443"], datasets: { [name]: dataset } }));
  return { file, dir };
}

export function createHandler(file: string, keys: TestKeys): QueryHandler {
  return new QueryHandler({
    config: loadClientConfig(file),
    signer: { sign: (data) => sign("sha256", data, keys.privateKey), serial: "0a1b" },
    logger: silentLogger(),
  });
}

export function request(queryId: string, sql: string, params: Record<string, Value> = {}, extra: Partial<QueryRequest> = {}): QueryRequest {
  return {
    requestId: randomBytes(16),
    dataset: "chinook",
    queryId,
    sqlSha256: sqlSha256(sql),
    params,
    maxRows: 0,
    deadlineUnixMs: 0n,
    callerSpiffeId: "spiffe://operator.example/service/reports",
    sqlSha256ByEngine: {},
    paramsSalt: randomBytes(32),
    ...extra,
  };
}

export interface Collected {
  columns: ResultColumns | undefined;
  rows: Row[];
  chunks: number;
  summary: ResultSummary;
}

/** Runs one request through the handler and collects what it sends. */
export async function run(handler: QueryHandler, req: QueryRequest, signal: AbortSignal = new AbortController().signal): Promise<Collected> {
  const messages: SessionMessage[] = [];
  await handler.handle(req, { send: async (m) => void messages.push(m) }, signal);
  const summary = messages.at(-1)?.summary;
  if (summary === undefined) throw new Error("the handler sent no summary last");
  return {
    columns: messages.find((m) => m.columns !== undefined)?.columns,
    rows: messages.flatMap((m) => m.rows?.rows ?? []),
    chunks: messages.filter((m) => m.rows !== undefined).length,
    summary,
  };
}

/** Converts a tunnel value to text for comparison with a driver's own output. */
export function valueText(value: Value): string | null {
  if (value.nullValue !== undefined) return null;
  if (value.intValue !== undefined) return value.intValue.toString();
  if (value.doubleValue !== undefined) return String(value.doubleValue);
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return String(value.boolValue);
  if (value.bytesValue !== undefined) return value.bytesValue.toString("hex");
  return "(unset)";
}

export function rowsText(rows: Row[]): Array<Array<string | null>> {
  return rows.map((row) => row.values.map(valueText));
}

/** Creates a database ewii_test_<random> on the shared server, loaded with Chinook, and returns its URL. */
export function createChinookDatabase(): { name: string; url: string } {
  const name = `ewii_test_${randomBytes(6).toString("hex")}`;
  execFileSync("psql", [...PG_ADMIN, "-d", "postgres", "-c", `CREATE DATABASE ${name}`]);
  // The script drops, creates and connects to its own "chinook" database; those lines are left out so it loads into ours.
  const script = readFileSync(CHINOOK_POSTGRES_SCRIPT, "utf8")
    .split("\n")
    .filter((line) => !/^(DROP DATABASE|CREATE DATABASE|\\c )/.test(line))
    .join("\n");
  execFileSync("psql", [...PG_ADMIN, "-d", name, "-f", "-"], { input: script });
  return { name, url: `postgres://postgres@127.0.0.1:5432/${name}` };
}

export function dropDatabase(name: string): void {
  execFileSync("psql", [...PG_ADMIN, "-d", "postgres", "-c", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
}

/**
 * Creates a handler over one dataset whose configuration is only parsed,
 * not checked by `loadClientConfig`, so tests can reach the executors' own
 * guards with SQL that the loader rejects.
 */
export function createUncheckedHandler(dataset: Record<string, unknown>, keys: TestKeys): QueryHandler {
  const config = clientConfigSchema.parse({ identity_dir: "/nonexistent", ca: "127.0.0.1:7440", relays: ["127.0.0.1:7443"], datasets: { chinook: dataset } });
  return new QueryHandler({
    config,
    signer: { sign: (data) => sign("sha256", data, keys.privateKey), serial: "0a1b" },
    logger: silentLogger(),
  });
}

/** Runs one request on an executor and collects every encoded row it hands to the sink, then its result or error. */
export async function collectRows(executor: DatasetExecutor, request: Partial<ExecutionRequest> & { sql: string }): Promise<{ rows: Uint8Array[]; result?: ExecutionResult; error?: unknown }> {
  const rows: Uint8Array[] = [];
  const full: ExecutionRequest = { params: [], maxRows: 1_000_000, maxBytes: 1 << 30, timeoutMs: 30_000, signal: new AbortController().signal, ...request };
  try {
    const result = await executor.run(full, {
      columns: () => undefined,
      rows: async (batch) => {
        // A copy, so that a later batch cannot change the bytes of an earlier one unnoticed.
        for (const encoded of batch) rows.push(Uint8Array.from(encoded));
      },
    });
    return { rows, result };
  } catch (error: unknown) {
    return { rows, error };
  }
}
