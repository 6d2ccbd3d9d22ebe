import { generateKeyPairSync } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

/** A fresh Ed25519 checkpoint key pair. */
export function checkpointKeys(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("ed25519");
}

export function openLog(dir: string, options: Partial<AuditLogOptions> = {}): Promise<AuditLog> {
  return AuditLog.open(dir, { paramsKey: TEST_PARAMS_KEY, checkpointEverySeconds: 0, ...options });
}
