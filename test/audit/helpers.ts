import { generateKeyPairSync } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import winston from "winston";
import { AuditLog } from "../../services/audit/log.js";
import type { AuditLogOptions, AuditRecordInput } from "../../services/audit/log.js";

/** A fixed 32-byte params key for tests. */
export const TEST_PARAMS_KEY = Buffer.alloc(32, 7);

/** Builds a valid hub record; `overrides` replaces single fields. */
export function sampleRecord(i: number, overrides: AuditRecordInput = {}): AuditRecordInput {
  return {
    event: "query.started",
    requestId: (1000 + i).toString(16),
    tenant: "acme",
    callerSpiffeId: "spiffe://operator.example/service/billing",
    callerSerial: "0a1b",
    clientSpiffeId: "spiffe://acme.tenants.operator.example/client/site-1",
    dataset: "orders",
    queryId: "orders_by_customer",
    paramsRawJson: JSON.stringify({ customer_id: `cust-${i}` }),
    decision: "allow",
    rule: "billing-reads-orders",
    policyVersion: 3n,
    ...overrides,
  };
}

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

export async function tempDir(): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), "ewii-audit-test-"));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Generates a fresh Ed25519 checkpoint key pair. */
export function checkpointKeys(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("ed25519");
}

export function openLog(dir: string, options: Partial<AuditLogOptions> = {}): Promise<AuditLog> {
  return AuditLog.open(dir, { paramsKey: TEST_PARAMS_KEY, checkpointEverySeconds: 0, ...options });
}

/** Creates a winston logger that keeps every line in memory, for asserting on logs. */
export function capturingLogger(): { logger: winston.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    objectMode: true,
    write(chunk: Record<string, unknown>, _encoding, done) {
      lines.push(chunk);
      done();
    },
  });
  const logger = winston.createLogger({ level: "debug", transports: [new winston.transports.Stream({ stream })] });
  return { logger, lines };
}

/** Reads the lines of the first segment file, without the trailing empty string. */
export async function segmentLines(dir: string): Promise<string[]> {
  const text = await readFile(join(dir, "segment-00000000000000000001.jsonl"), "utf8");
  return text.split("\n").filter((line) => line !== "");
}

/** Rewrites the first segment file from lines. */
export async function writeSegmentLines(dir: string, lines: string[]): Promise<void> {
  await writeFile(join(dir, "segment-00000000000000000001.jsonl"), lines.map((line) => `${line}\n`).join(""));
}
