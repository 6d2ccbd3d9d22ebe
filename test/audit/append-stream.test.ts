import assert from "node:assert/strict";
import type { ServiceError } from "@grpc/grpc-js";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { AuditRecord as AuditRecordMessage, AuditServiceClient } from "../../gen/ewii/audit/v1/audit.js";
import type { AppendStreamRequest, AppendStreamResponse, QueryResponse } from "../../gen/ewii/audit/v1/audit.js";
import { auditConfigSchema } from "../../services/audit/config.js";
import { MAX_PARAMS_BYTES } from "../../services/audit/params.js";
import { MAX_FIELD_CHARS } from "../../services/audit/record-input.js";
import { startAuditService } from "../../services/audit/server.js";
import type { RunningAuditService } from "../../services/audit/server.js";
import { errorCodeOf } from "../../services/core/errors.js";
import { TlsMaterialSource, channelOptions, createClientCredentials, dialTarget } from "../../services/core/grpc/index.js";
import type { Logger } from "../../services/core/log.js";
import { silentLogger } from "../../services/core/log.js";
import { StreamingAuditAppender } from "../../services/hub/audit-appender.js";
import { createTestCa, issueTestLeaf, testVerifier, tlsMaterial } from "../grpc/helpers.js";
import type { TestCa, TestLeaf } from "../grpc/helpers.js";
import { capturingLogger, checkpointKeys, sampleRecord, tempDir } from "./helpers.js";
import type { TempDir } from "./helpers.js";

const OPERATOR_DOMAIN = "operator.test";
const SERVER_ID = `spiffe://${OPERATOR_DOMAIN}/service/audit`;
/** A character that takes three bytes in UTF-8 but counts as one character. */
const WIDE_CHAR = "\u6f22";

/**
 * Builds a valid record as large as the audit service accepts: every text
 * field at its character limit in three-byte characters, and parameters at
 * their byte limit.
 */
function largestRecord(i: number): ReturnType<typeof sampleRecord> {
  const text = (prefix: string): string => prefix + WIDE_CHAR.repeat(MAX_FIELD_CHARS - prefix.length);
  const paramsFrame = JSON.stringify({ p: { text: "" } });
  const paramsChars = Math.floor((MAX_PARAMS_BYTES - paramsFrame.length) / 3);
  return sampleRecord(i, {
    tenant: text(`t${i}`),
    callerSpiffeId: text("spiffe://operator.test/"),
    clientSpiffeId: text("spiffe://acme.tenants.operator.test/"),
    dataset: text("d"),
    queryId: text("q"),
    rule: text("r"),
    relayId: text("relay-"),
    outcome: text("o"),
    paramsRawJson: JSON.stringify({ p: { text: WIDE_CHAR.repeat(paramsChars) } }),
  });
}

describe("audit append stream under stress", () => {
  let dir: TempDir;
  let ca: TestCa;
  let serverLeaf: TestLeaf;
  let running: RunningAuditService;
  const clients: AuditServiceClient[] = [];
  const signingKey = checkpointKeys().privateKey;

  function startService(listen: string, logger: Logger = silentLogger()): Promise<RunningAuditService> {
    const config = auditConfigSchema.parse({
      listen,
      data_dir: dir.path,
      credentials_dir: dir.path,
      operator_trust_domain: OPERATOR_DOMAIN,
      checkpoint_every_seconds: 0,
    });
    return startAuditService(config, { logger, verifyPeer: testVerifier([ca]), tls: new TlsMaterialSource(tlsMaterial(serverLeaf, [ca])), signingKey, env: {} });
  }

  async function clientAs(path: string): Promise<AuditServiceClient> {
    const leaf = await issueTestLeaf(ca, path);
    const target = dialTarget(running.server.address);
    const creds = createClientCredentials({ tls: tlsMaterial(leaf, [ca]), trustedCasPem: ca.pem, expectServer: (id) => id === SERVER_ID });
    const client = new AuditServiceClient(target, creds, channelOptions(target));
    clients.push(client);
    return client;
  }

  /** Returns the request id of every stored record, keyed by sequence. */
  async function storedRequestIds(): Promise<Map<number, string>> {
    const admin = await clientAs("/admin/alice");
    const ids = new Map<number, string>();
    let after = 0n;
    for (;;) {
      const res = await new Promise<QueryResponse>((resolve, reject) => {
        admin.query({ tenant: "", principal: "", client: "", decision: "", limit: 1000, afterSequence: after }, (err: ServiceError | null, value?: QueryResponse) => (err === null && value !== undefined ? resolve(value) : reject(err)));
      });
      if (res.records.length === 0) return ids;
      for (const record of res.records) ids.set(Number(record.sequence), record.requestId);
      after = res.records[res.records.length - 1].sequence;
    }
  }

  beforeEach(async () => {
    dir = await tempDir();
    ca = await createTestCa(OPERATOR_DOMAIN);
    serverLeaf = await issueTestLeaf(ca, "/service/audit", { dnsName: "localhost" });
    running = await startService("127.0.0.1:0");
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await running.close();
    await dir.remove();
  });

  it("invalid record fails only its own append", async () => {
    const appender = new StreamingAuditAppender({ client: await clientAs("/service/hub"), deadlineMs: 10_000, logger: silentLogger() });

    // Both appends are made in one turn, so they travel in one batch.
    const [bad, good] = await Promise.allSettled([appender.append([sampleRecord(1, { dataset: "x".repeat(MAX_FIELD_CHARS + 1) })]), appender.append([sampleRecord(2)])]);
    appender.close();

    assert.equal(bad.status, "rejected");
    assert.equal(errorCodeOf(bad.reason), "ERR_AUDIT_RECORD_INVALID");
    assert.equal(good.status, "fulfilled", `the valid append failed: ${good.status === "rejected" ? String(good.reason) : ""}`);
  });

  it("largest records stay under the message limit", async () => {
    const appender = new StreamingAuditAppender({ client: await clientAs("/service/hub"), deadlineMs: 30_000, logger: silentLogger() });

    const count = 80;
    const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => appender.append([largestRecord(i)])));
    appender.close();

    const failures = results.filter((result) => result.status === "rejected").map((result) => String(result.reason));
    assert.deepEqual(failures.slice(0, 1), []);
    const stored = await storedRequestIds();
    results.forEach((result, i) => {
      assert.ok(result.status === "fulfilled");
      assert.equal(stored.get(result.value[0]), sampleRecord(i).requestId, `append ${i} got sequence ${result.value[0]}`);
    });
  });

  it("oversized append fails alone", async () => {
    const appender = new StreamingAuditAppender({ client: await clientAs("/service/hub"), deadlineMs: 10_000, logger: silentLogger() });

    // Forty such records pass the audit service's 4 MiB message limit.
    const records = Array.from({ length: 40 }, (_, i) => largestRecord(i));
    const [oversized, small] = await Promise.allSettled([appender.append(records), appender.append([sampleRecord(20)])]);
    appender.close();

    assert.equal(oversized.status, "rejected");
    assert.equal(errorCodeOf(oversized.reason), "ERR_AUDIT_RECORD_INVALID");
    assert.match(String(oversized.reason), /append fewer records per call/);
    assert.equal(small.status, "fulfilled", `the small append failed: ${small.status === "rejected" ? String(small.reason) : ""}`);
  });

  it("half-closed stream acknowledges every batch", async () => {
    const hub = await clientAs("/service/hub");
    const call: ClientDuplexStream<AppendStreamRequest, AppendStreamResponse> = hub.appendStream();
    const responses: AppendStreamResponse[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      call.on("data", (response: AppendStreamResponse) => responses.push(response));
      call.on("end", resolve);
      call.on("error", reject);
    });

    const count = 20;
    for (let i = 1; i <= count; i++) call.write({ batchId: BigInt(i), records: [AuditRecordMessage.fromPartial(sampleRecord(i))] });
    call.end();
    await ended;

    assert.deepEqual(
      responses.map((response) => response.batchId).sort((a, b) => Number(a - b)),
      Array.from({ length: count }, (_, i) => BigInt(i + 1)),
    );
    assert.deepEqual(
      responses.filter((response) => response.errorCode !== ""),
      [],
    );
  });

  it("acknowledged records survive a restart", async () => {
    const appender = new StreamingAuditAppender({ client: await clientAs("/service/hub"), deadlineMs: 10_000, logger: silentLogger() });
    await appender.append([sampleRecord(0)]);
    const address = running.server.address;

    const appends: Array<Promise<number[]>> = [];
    for (let i = 1; i <= 40; i++) {
      appends.push(appender.append([sampleRecord(i)]));
      // Separate turns give separate batches, so the restart can interrupt some of them.
      await new Promise((resolve) => setImmediate(resolve));
      if (i === 20) void running.close();
    }
    const results = await Promise.allSettled(appends);
    await running.close();
    running = await startService(address);
    appender.close();

    const stored = await storedRequestIds();
    results.forEach((result, i) => {
      if (result.status === "rejected") {
        assert.equal(errorCodeOf(result.reason), "ERR_AUDIT_UNAVAILABLE", String(result.reason));
        return;
      }
      assert.equal(stored.get(result.value[0]), sampleRecord(i + 1).requestId, `append ${i + 1} got sequence ${result.value[0]}`);
    });
  });

  it("stream handler finishes after cancel", async () => {
    const address = running.server.address;
    await running.close();
    const capture = capturingLogger();
    running = await startService(address, capture.logger);
    const hub = await clientAs("/service/hub");
    const call = hub.appendStream();
    const first = new Promise((resolve) => call.once("data", resolve));
    call.on("error", () => undefined);
    call.write({ batchId: 1n, records: [AuditRecordMessage.fromPartial(sampleRecord(1))] });
    await first;

    call.cancel();
    const finished = (): boolean => capture.lines.some((line) => line.message === "rpc finished" && String(line.method).endsWith("/AppendStream"));
    for (let attempt = 0; attempt < 200 && !finished(); attempt++) await new Promise((resolve) => setTimeout(resolve, 50));

    assert.ok(finished(), "the AppendStream handler did not finish after the client cancelled");
  });

  it("stopping service ends open streams cleanly", async () => {
    const hub = await clientAs("/service/hub");
    const call: ClientDuplexStream<AppendStreamRequest, AppendStreamResponse> = hub.appendStream();
    const responses: AppendStreamResponse[] = [];
    call.on("data", (response: AppendStreamResponse) => responses.push(response));
    const outcome = new Promise<{ code: number; details: string }>((resolve) => {
      call.on("status", (status: { code: number; details: string }) => resolve(status));
      call.on("error", () => undefined);
    });
    call.write({ batchId: 1n, records: [AuditRecordMessage.fromPartial(sampleRecord(1))] });
    while (responses.length === 0) await new Promise((resolve) => setImmediate(resolve));

    await running.close();
    const status = await outcome;

    // A forced shutdown after the grace period would end the call with UNAVAILABLE or CANCELLED.
    assert.equal(status.code, 0, `stream ended with status ${status.code}: ${status.details}`);
    assert.equal(responses[0].sequences.length, 1);
  });
});
