import assert from "node:assert/strict";
import { once } from "node:events";
import { Server, ServerCredentials, credentials, status } from "@grpc/grpc-js";
import type { ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import { AuditRecord as AuditRecordMessage, AuditServiceClient, AuditServiceService } from "../../gen/ewii/audit/v1/audit.js";
import type { AppendResponse, AppendStreamRequest, AppendStreamResponse, QueryResponse, TailResponse, VerifyResponse } from "../../gen/ewii/audit/v1/audit.js";
import { errorCodeOf } from "../../services/core/errors.js";
import { silentLogger } from "../../services/core/log.js";
import { MAX_BATCH_RECORDS, StreamingAuditAppender } from "../../services/hub/audit-appender.js";
import { sampleRecord } from "./helpers.js";
import { AuditServiceHarness } from "./service-harness.js";

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
  const harness = new AuditServiceHarness({ checkpoint_every_records: 2 });
  const clientAs = (path: string): Promise<AuditServiceClient> => harness.clientAs(path);

  beforeEach(() => harness.start());
  afterEach(() => harness.stop());

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
  /** Opens an append stream and collects its responses by batch id. */
  function appendStream(client: AuditServiceClient): { call: ClientDuplexStream<AppendStreamRequest, AppendStreamResponse>; responses: (count: number) => Promise<Map<bigint, AppendStreamResponse>> } {
    const call = client.appendStream();
    const received = new Map<bigint, AppendStreamResponse>();
    const failed = new Promise<never>((_resolve, reject) => call.on("error", reject));
    failed.catch(() => undefined);
    const responses = async (count: number): Promise<Map<bigint, AppendStreamResponse>> => {
      while (received.size < count) await Promise.race([once(call, "data"), failed]);
      return received;
    };
    call.on("data", (response: AppendStreamResponse) => received.set(response.batchId, response));
    return { call, responses };
  }

  it("append stream acknowledges each batch", async () => {
    const stream = appendStream(await clientAs("/service/hub"));
    stream.call.write({ batchId: 7n, records: [wire(1), wire(2)] });
    stream.call.write({ batchId: 8n, records: [wire(3)] });

    const responses = await stream.responses(2);
    stream.call.end();

    // Checkpoints take sequences of their own, so only the order is fixed.
    const [first, second] = [responses.get(7n)?.sequences ?? [], responses.get(8n)?.sequences ?? []];
    assert.equal(first.length, 2);
    assert.equal(second.length, 1);
    assertAscending([...first, ...second].map(Number), 3);
  });

  it("invalid batch fails alone on the stream", async () => {
    const stream = appendStream(await clientAs("/service/hub"));
    stream.call.write({ batchId: 1n, records: [wire(1, { paramsDigest: "ab".repeat(32) })] });
    stream.call.write({ batchId: 2n, records: [] });
    stream.call.write({ batchId: 3n, records: [wire(2)] });

    const responses = await stream.responses(3);
    stream.call.end();

    assert.equal(responses.get(1n)?.errorCode, "ERR_AUDIT_RECORD_INVALID");
    assert.match(responses.get(1n)?.errorMessage ?? "", /params_digest is set by the audit service/);
    assert.deepEqual(responses.get(1n)?.sequences, []);
    assert.equal(responses.get(2n)?.errorCode, "ERR_AUDIT_RECORD_INVALID");
    assert.equal(responses.get(3n)?.sequences.length, 1);
  });

  it("non-hub append stream is denied", async () => {
    const stream = appendStream(await clientAs("/service/billing"));
    stream.call.write({ batchId: 1n, records: [wire(1)] });

    const err = await rejection(stream.responses(1));

    assert.equal(err.code, status.PERMISSION_DENIED);
    assert.equal(errorCodeOf(err), "ERR_AUDIT_NOT_APPENDER");
  });

  describe("hub appender", () => {
    /** Creates a hub client whose append streams record every batch they send. */
    async function recordingHub(): Promise<{ client: AuditServiceClient; batches: AppendStreamRequest[] }> {
      const client = await clientAs("/service/hub");
      const batches: AppendStreamRequest[] = [];
      const openStream = client.appendStream.bind(client);
      client.appendStream = ((...args: Parameters<typeof openStream>) => {
        const call = openStream(...args);
        const write = call.write.bind(call) as (request: AppendStreamRequest) => boolean;
        call.write = ((request: AppendStreamRequest) => {
          batches.push(request);
          return write(request);
        }) as typeof call.write;
        return call;
      }) as typeof client.appendStream;
      return { client, batches };
    }

    it("sends the appends of one turn as one batch", async () => {
      const hub = await recordingHub();
      const appender = new StreamingAuditAppender({ client: hub.client, deadlineMs: 5_000, logger: silentLogger() });

      const [first, second] = await Promise.all([appender.append([sampleRecord(1)]), appender.append([sampleRecord(2), sampleRecord(3)])]);
      const third = await appender.append([sampleRecord(4)]);
      appender.close();

      assertAscending([...first, ...second, ...third], 4);
      assert.deepEqual(
        hub.batches.map((batch) => batch.records.length),
        [3, 1],
      );
    });

    it("splits a batch at the record limit", async () => {
      const hub = await recordingHub();
      const appender = new StreamingAuditAppender({ client: hub.client, deadlineMs: 5_000, logger: silentLogger() });

      const appends = Array.from({ length: MAX_BATCH_RECORDS + 1 }, (_, i) => appender.append([sampleRecord(i)]));
      const sequences = (await Promise.all(appends)).flat();
      appender.close();

      assertAscending(sequences, MAX_BATCH_RECORDS + 1);
      assert.deepEqual(
        hub.batches.map((batch) => batch.records.length),
        [MAX_BATCH_RECORDS, 1],
      );
    });

    it("rejected record fails its append only", async () => {
      const appender = new StreamingAuditAppender({ client: await clientAs("/service/hub"), deadlineMs: 5_000, logger: silentLogger() });

      const bad = appender.append([{ ...sampleRecord(1), paramsDigest: "ab".repeat(32) }]);
      await assert.rejects(bad, (err: unknown) => errorCodeOf(err) === "ERR_AUDIT_RECORD_INVALID");
      const good = await appender.append([sampleRecord(2)]);
      appender.close();

      assert.equal(good.length, 1);
    });

    it("fails appends while audit is down and reconnects after", async () => {
      const appender = new StreamingAuditAppender({ client: await clientAs("/service/hub"), deadlineMs: 5_000, logger: silentLogger() });
      const [before] = await appender.append([sampleRecord(1)]);
      const address = harness.running.server.address;

      await harness.running.close();
      await assert.rejects(appender.append([sampleRecord(2)]), (err: unknown) => errorCodeOf(err) === "ERR_AUDIT_UNAVAILABLE");
      harness.running = await harness.startService(address);
      const after = await eventually(() => appender.append([sampleRecord(3)]));
      appender.close();

      assert.equal(after.length, 1);
      assert.ok(after[0] > before, `sequence ${after[0]} after the restart should follow ${before}`);
    });

    it("unacknowledged batch fails at the deadline", async () => {
      const silent = await startSilentAuditServer();
      const client = new AuditServiceClient(silent.address, credentials.createInsecure());
      const appender = new StreamingAuditAppender({ client, deadlineMs: 200, logger: silentLogger() });

      await assert.rejects(appender.append([sampleRecord(1)]), (err: unknown) => errorCodeOf(err) === "ERR_AUDIT_UNAVAILABLE" && /did not acknowledge the records within 200 ms/.test(String(err)));
      appender.close();
      client.close();
      silent.close();
    });

    it("cancelled append rejects with the signal's reason", async () => {
      const silent = await startSilentAuditServer();
      const client = new AuditServiceClient(silent.address, credentials.createInsecure());
      const appender = new StreamingAuditAppender({ client, deadlineMs: 5_000, logger: silentLogger() });
      const controller = new AbortController();

      const pending = appender.append([sampleRecord(1)], controller.signal);
      controller.abort(new Error("caller went away"));

      await assert.rejects(pending, /caller went away/);
      appender.close();
      client.close();
      silent.close();
    });
  });
});

/**
 * Starts an AuditService on loopback whose append streams never respond.
 * It replaces a hung audit service, because the real one cannot be made to
 * stall on demand.
 */
async function startSilentAuditServer(): Promise<{ address: string; close: () => void }> {
  const server = new Server();
  const unimplemented = (): never => {
    throw new Error("not used by these tests");
  };
  server.addService(AuditServiceService, { append: unimplemented, query: unimplemented, tail: unimplemented, verify: unimplemented, listSinks: unimplemented, appendStream: () => undefined });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, bound) => (err === null ? resolve(bound) : reject(err))));
  return { address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

/** Retries `attempt` until it resolves, for up to 20 seconds: gRPC reconnects with growing backoff. */
async function eventually<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await attempt();
    } catch (err: unknown) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Checks that `sequences` has `count` strictly increasing entries; checkpoints may take the numbers between. */
function assertAscending(sequences: number[], count: number): void {
  assert.equal(sequences.length, count);
  for (let i = 1; i < sequences.length; i++) assert.ok(sequences[i] > sequences[i - 1], `sequence ${sequences[i]} at ${i} does not follow ${sequences[i - 1]}`);
}
