import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { join } from "node:path";
import type { AuditLog } from "../../services/audit/log.js";
import { SinkSet } from "../../services/audit/export/sinks.js";
import { sinkConfigSchema } from "../../services/audit/export/sink-config.js";
import type { SinkConfig } from "../../services/audit/export/sink-config.js";
import { silentLogger } from "../../services/core/log.js";
import { openLog, sampleRecord, tempDir } from "../audit/helpers.js";
import type { TempDir } from "../audit/helpers.js";
import { FrameReceiver } from "./frame-receiver.js";
import { waitFor } from "./rsyslog.js";

async function appendRecords(log: AuditLog, count: number, first = 0): Promise<void> {
  for (let i = 0; i < count; i += 10) {
    await log.append(Array.from({ length: Math.min(10, count - i) }, (_, j) => sampleRecord(first + i + j)));
  }
}

function sinkConfig(port: number, overrides: Record<string, unknown> = {}): SinkConfig[] {
  return [sinkConfigSchema.parse({ name: "siem", type: "syslog-tcp", address: `127.0.0.1:${port}`, batch_entries: 10, ...overrides })];
}

describe("audit export stop", function () {
  this.timeout(30_000);
  let dir: TempDir;
  let log: AuditLog;
  beforeEach(async () => {
    dir = await tempDir();
    log = await openLog(join(dir.path, "log"), { checkpointEveryRecords: 50 });
  });
  afterEach(async () => {
    await log.close();
    await dir.remove();
  });

  it("clean stop sends pending entries", async () => {
    const receiver = new FrameReceiver({ keepSequences: true });
    const port = await receiver.listen();
    try {
      const sinks = await SinkSet.start({ log, sinks: sinkConfig(port), logger: silentLogger() });
      await appendRecords(log, 500);
      const headAtStop = log.head.sequence;
      await sinks.stop();
      const stopped = sinks.status()[0];
      await waitFor(async () => receiver.openConnections === 0, "the sink connection to close");
      const framesAtStop = receiver.sequences.length;

      await appendRecords(log, 100, 500);
      const restarted = await SinkSet.start({ log, sinks: sinkConfig(port), logger: silentLogger() });
      await waitFor(async () => new Set(receiver.sequences).size >= Number(log.head.sequence), `sequence ${log.head.sequence} at the receiver`);
      await restarted.stop();

      assert.equal(stopped.persistedSequence, headAtStop);
      assert.equal(stopped.state, "stopped");
      assert.deepEqual(receiver.sequences.slice(0, framesAtStop), Array.from({ length: Number(headAtStop) }, (_, i) => BigInt(i + 1)));
      assert.deepEqual(receiver.sequences, Array.from({ length: Number(log.head.sequence) }, (_, i) => BigInt(i + 1)));
    } finally {
      await receiver.close();
    }
  });

  it("stop gives up on a stalled receiver", async () => {
    // The receiver accepts and never reads, so the socket buffers fill and writes stall.
    const sockets: Socket[] = [];
    const server: Server = createServer((socket) => {
      socket.pause();
      sockets.push(socket);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no TCP address");
    try {
      await appendRecords(log, 20_000);
      const sinks = await SinkSet.start({ log, sinks: sinkConfig(address.port, { batch_entries: 1000, drain_timeout_ms: 200 }), logger: silentLogger() });
      await waitFor(async () => sinks.status()[0].sentSequence > 0n, "the first write");
      await sinks.stop();
      const stopped = sinks.status()[0];

      assert.equal(stopped.state, "stopped");
      assert.ok(stopped.persistedSequence < log.head.sequence, `persisted ${stopped.persistedSequence} of ${log.head.sequence}`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
