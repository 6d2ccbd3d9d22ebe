import assert from "node:assert/strict";
import type { ServiceError } from "@grpc/grpc-js";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { AuditRecord as AuditRecordMessage } from "../../gen/ewii/audit/v1/audit.js";
import type { AppendStreamRequest, AppendStreamResponse, AuditServiceClient, QueryResponse } from "../../gen/ewii/audit/v1/audit.js";
import { MAX_PARAMS_BYTES } from "../../services/audit/params.js";
import { MAX_FIELD_CHARS } from "../../services/audit/record-input.js";
import { errorCodeOf } from "../../services/core/errors.js";
import { silentLogger } from "../../services/core/log.js";
import { StreamingAuditAppender } from "../../services/hub/audit-appender.js";
import { capturingLogger, sampleRecord } from "./helpers.js";
import { AuditServiceHarness } from "./service-harness.js";

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
  const harness = new AuditServiceHarness();
  const clientAs = (path: string): Promise<AuditServiceClient> => harness.clientAs(path);

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

  beforeEach(() => harness.start());
  afterEach(() => harness.stop());

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
    const address = harness.running.server.address;

    const appends: Array<Promise<number[]>> = [];
    for (let i = 1; i <= 40; i++) {
      const append = appender.append([sampleRecord(i)]);
      // allSettled reads the outcome below; this keeps an early rejection from being reported as unhandled.
      append.catch(() => undefined);
      appends.push(append);
      // Separate turns give separate batches, so the restart can interrupt some of them.
      await new Promise((resolve) => setImmediate(resolve));
      if (i === 20) void harness.running.close();
    }
    const results = await Promise.allSettled(appends);
    await harness.running.close();
    harness.running = await harness.startService(address);
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
    const address = harness.running.server.address;
    await harness.running.close();
    const capture = capturingLogger();
    harness.running = await harness.startService(address, capture.logger);
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

    await harness.running.close();
    const status = await outcome;

    // A forced shutdown after the grace period would end the call with UNAVAILABLE or CANCELLED.
    assert.equal(status.code, 0, `stream ended with status ${status.code}: ${status.details}`);
    assert.equal(responses[0].sequences.length, 1);
  });
});
