import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";
import { AuditRecord as AuditRecordMessage, AuditServiceClient } from "../../gen/ewii/audit/v1/audit.js";
import type { AppendResponse, QueryResponse, TailResponse, VerifyResponse } from "../../gen/ewii/audit/v1/audit.js";
import { auditConfigSchema } from "../../services/audit/config.js";
import { startAuditService } from "../../services/audit/server.js";
import type { RunningAuditService } from "../../services/audit/server.js";
import { errorCodeOf } from "../../services/core/errors.js";
import { TlsMaterialSource, channelOptions, createClientCredentials, dialTarget } from "../../services/core/grpc/index.js";
import { silentLogger } from "../../services/core/log.js";
import { createTestCa, issueTestLeaf, testVerifier, tlsMaterial } from "../grpc/helpers.js";
import type { TestCa } from "../grpc/helpers.js";
import { checkpointKeys, sampleRecord, tempDir } from "./helpers.js";
import type { TempDir } from "./helpers.js";

const OPERATOR_DOMAIN = "operator.test";
const SERVER_ID = `spiffe://${OPERATOR_DOMAIN}/service/audit`;

function wire(i: number, overrides: Partial<AuditRecordMessage> = {}): AuditRecordMessage {
  return AuditRecordMessage.fromPartial({ ...sampleRecord(i), ...overrides });
}

function unary<Res>(invoke: (callback: (err: ServiceError | null, res?: Res) => void) => void): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((err, res) => (err === null && res !== undefined ? resolve(res) : reject(err)));
  });
}

async function rejection(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err: unknown) {
    return err as ServiceError;
  }
  throw new assert.AssertionError({ message: "expected the call to fail" });
}

describe("audit service over mTLS", () => {
  let dir: TempDir;
  let ca: TestCa;
  let running: RunningAuditService;
  const clients: AuditServiceClient[] = [];

  async function clientAs(path: string): Promise<AuditServiceClient> {
    const leaf = await issueTestLeaf(ca, path);
    const target = dialTarget(running.server.address);
    const credentials = createClientCredentials({ tls: tlsMaterial(leaf, [ca]), trustedCasPem: ca.pem, expectServer: (id) => id === SERVER_ID });
    const client = new AuditServiceClient(target, credentials, channelOptions(target));
    clients.push(client);
    return client;
  }

  beforeEach(async () => {
    dir = await tempDir();
    ca = await createTestCa(OPERATOR_DOMAIN);
    const serverLeaf = await issueTestLeaf(ca, "/service/audit", { dnsName: "localhost" });
    const config = auditConfigSchema.parse({
      listen: "127.0.0.1:0",
      data_dir: dir.path,
      credentials_dir: dir.path,
      operator_trust_domain: OPERATOR_DOMAIN,
      checkpoint_every_records: 2,
      checkpoint_every_seconds: 0,
    });
    running = await startAuditService(config, {
      logger: silentLogger(),
      verifyPeer: testVerifier([ca]),
      tls: new TlsMaterialSource(tlsMaterial(serverLeaf, [ca])),
      signingKey: checkpointKeys().privateKey,
      env: {},
    });
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await running.close();
    await dir.remove();
  });

  it("hub append returns sequences", async () => {
    const hub = await clientAs("/service/hub");
    const res = await unary<AppendResponse>((cb) => hub.append({ records: [wire(1), wire(2)] }, cb));

    assert.deepEqual(res.sequences, [1n, 2n]);
  });

  it("non-hub append is denied", async () => {
    const other = await clientAs("/service/billing");
    const err = await rejection(unary((cb) => other.append({ records: [wire(1)] }, cb)));

    assert.equal(err.code, status.PERMISSION_DENIED);
    assert.equal(errorCodeOf(err), "ERR_AUDIT_NOT_APPENDER");
  });

  it("caller-set params_digest is rejected", async () => {
    const hub = await clientAs("/service/hub");
    const err = await rejection(unary((cb) => hub.append({ records: [wire(1, { paramsDigest: "ab".repeat(32) })] }, cb)));

    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.equal(errorCodeOf(err), "ERR_AUDIT_RECORD_INVALID");
  });

  it("empty append is rejected", async () => {
    const hub = await clientAs("/service/hub");
    const err = await rejection(unary((cb) => hub.append({ records: [] }, cb)));

    assert.equal(err.code, status.INVALID_ARGUMENT);
  });

  it("hub query is denied", async () => {
    const hub = await clientAs("/service/hub");
    const err = await rejection(unary((cb) => hub.query({ tenant: "", principal: "", client: "", decision: "", limit: 0, afterSequence: 0n }, cb)));

    assert.equal(err.code, status.PERMISSION_DENIED);
    assert.equal(errorCodeOf(err), "ERR_AUDIT_NOT_ADMIN");
  });

  it("admin query returns appended records", async () => {
    const hub = await clientAs("/service/hub");
    const admin = await clientAs("/admin/alice");
    await unary<AppendResponse>((cb) => hub.append({ records: [wire(1), wire(2, { tenant: "globex" })] }, cb));
    const res = await unary<QueryResponse>((cb) => admin.query({ tenant: "globex", principal: "", client: "", decision: "", limit: 0, afterSequence: 0n }, cb));

    assert.deepEqual(res.records.map((record) => record.requestId), ["3ea"]);
    assert.match(res.records[0].paramsDigest, /^[0-9a-f]{64}$/);
  });

  it("admin tail streams new records", async () => {
    const hub = await clientAs("/service/hub");
    const admin = await clientAs("/admin/alice");
    await unary<AppendResponse>((cb) => hub.append({ records: [wire(1)] }, cb));
    // Tailing after the head rather than from 0 makes the test independent
    // of when the server subscribes.
    const stream = admin.tail({ afterSequence: 1n });
    const received: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (res: TailResponse) => {
        received.push(res.record?.requestId ?? "");
        if (received.length === 1) void unary<AppendResponse>((cb) => hub.append({ records: [wire(3)] }, cb)).catch(reject);
        if (received.length === 2) resolve();
      });
      stream.on("error", (err: ServiceError) => {
        if (err.code !== status.CANCELLED) reject(err);
      });
    });
    await unary<AppendResponse>((cb) => hub.append({ records: [wire(2)] }, cb));
    await done;
    stream.cancel();

    assert.deepEqual(received, ["3ea", "3eb"]);
  });

  it("admin tail after a sequence replays stored records", async () => {
    const hub = await clientAs("/service/hub");
    const admin = await clientAs("/admin/alice");
    await unary<AppendResponse>((cb) => hub.append({ records: [wire(1), wire(2), wire(3)] }, cb));
    const stream = admin.tail({ afterSequence: 1n });
    const received: string[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on("data", (res: TailResponse) => {
        received.push(res.record?.requestId ?? "");
        if (received.length === 2) resolve();
      });
      stream.on("error", reject);
    });
    stream.cancel();

    assert.deepEqual(received, ["3ea", "3eb"]);
  });

  it("admin verify reports an intact log", async () => {
    const hub = await clientAs("/service/hub");
    const admin = await clientAs("/admin/alice");
    await unary<AppendResponse>((cb) => hub.append({ records: [wire(1), wire(2), wire(3)] }, cb));
    const res = await unary<VerifyResponse>((cb) => admin.verify({ fromSequence: 0n, toSequence: 0n }, cb));

    assert.equal(res.ok, true, res.detail);
    assert.equal(res.checked, 4n);
  });
});
