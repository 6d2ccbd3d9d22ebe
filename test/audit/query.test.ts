import assert from "node:assert/strict";
import type { AuditLog } from "../../services/audit/log.js";
import { queryAuditLog, tailAuditLog } from "../../services/audit/query.js";
import { formatRecord } from "../../services/audit/format.js";
import { openLog, sampleRecord, tempDir } from "./helpers.js";
import type { TempDir } from "./helpers.js";

const OTHER_CALLER = "spiffe://operator.example/service/reports";
const OTHER_CLIENT = "spiffe://globex.tenants.operator.example/client/site-9";

describe("audit query", () => {
  let dir: TempDir;
  let log: AuditLog;
  let clock = new Date("2026-12-04T10:00:00.000Z");

  beforeEach(async () => {
    dir = await tempDir();
    clock = new Date("2026-12-04T10:00:00.000Z");
    log = await openLog(dir.path, { now: () => clock, checkpointEveryRecords: 2 });
    await log.append([sampleRecord(1)]);
    clock = new Date("2026-12-04T11:00:00.000Z");
    await log.append([sampleRecord(2, { tenant: "globex", clientSpiffeId: OTHER_CLIENT })]);
    clock = new Date("2026-12-04T12:00:00.000Z");
    await log.append([sampleRecord(3, { callerSpiffeId: OTHER_CALLER, event: "query.denied", decision: "deny" })]);
    await log.append([sampleRecord(4)]);
  });
  afterEach(async () => {
    await log.close();
    await dir.remove();
  });

  const requestIds = (records: Array<{ requestId: string }>): string[] => records.map((record) => record.requestId);

  it("no filter returns every record oldest first", async () => {
    assert.deepEqual(requestIds(await queryAuditLog(log, {})), ["3e9", "3ea", "3eb", "3ec"]);
  });

  it("filters by tenant", async () => {
    assert.deepEqual(requestIds(await queryAuditLog(log, { tenant: "globex" })), ["3ea"]);
  });

  it("filters by principal", async () => {
    assert.deepEqual(requestIds(await queryAuditLog(log, { principal: OTHER_CALLER })), ["3eb"]);
  });

  it("filters by client", async () => {
    assert.deepEqual(requestIds(await queryAuditLog(log, { client: OTHER_CLIENT })), ["3ea"]);
  });

  it("filters by decision", async () => {
    assert.deepEqual(requestIds(await queryAuditLog(log, { decision: "deny" })), ["3eb"]);
  });

  it("time range includes start, excludes end", async () => {
    const found = await queryAuditLog(log, { fromTime: new Date("2026-12-04T11:00:00.000Z"), toTime: new Date("2026-12-04T12:00:00.000Z") });
    assert.deepEqual(requestIds(found), ["3ea"]);
  });

  it("after_sequence skips earlier records", async () => {
    const all = await queryAuditLog(log, {});
    assert.deepEqual(requestIds(await queryAuditLog(log, { afterSequence: all[1].sequence })), ["3eb", "3ec"]);
  });

  it("limit caps the result", async () => {
    assert.deepEqual(requestIds(await queryAuditLog(log, { limit: 2 })), ["3e9", "3ea"]);
  });

  it("limit above the maximum is rejected", async () => {
    await assert.rejects(queryAuditLog(log, { limit: 1_000_000 }), (err: unknown) => (err as { code?: string }).code === "ERR_AUDIT_QUERY_INVALID");
  });

  it("records skip checkpoint sequences", async () => {
    const sequences = (await queryAuditLog(log, {})).map((record) => record.sequence);
    assert.deepEqual(sequences, [1n, 2n, 4n, 5n]);
  });

  describe("tail", () => {
    it("catches up after a sequence, then streams new records", async () => {
      const controller = new AbortController();
      const seen: string[] = [];
      const tail = tailAuditLog(log, { afterSequence: 2n, signal: controller.signal });
      const reading = (async () => {
        for await (const record of tail) {
          seen.push(record.requestId);
          if (seen.length === 3) controller.abort();
        }
      })();
      while (seen.length < 2) await new Promise((resolve) => setImmediate(resolve));
      await log.append([sampleRecord(5)]);
      await reading;

      assert.deepEqual(seen, ["3eb", "3ec", "3ed"]);
    });

    it("after_sequence 0 streams only new records", async () => {
      const controller = new AbortController();
      const tail = tailAuditLog(log, { afterSequence: 0n, signal: controller.signal });
      const first = tail.next();
      await new Promise((resolve) => setImmediate(resolve));
      await log.append([sampleRecord(9)]);
      const { value } = await first;
      controller.abort();
      await tail.return(undefined);

      assert.equal(value?.requestId, "3f1");
    });

    it("slow reader gets ERR_AUDIT_TAIL_TOO_SLOW", async () => {
      const tail = tailAuditLog(log, { afterSequence: 0n, maxBufferedRecords: 2 });
      const first = tail.next();
      await new Promise((resolve) => setImmediate(resolve));
      await log.append([sampleRecord(6)]);
      await first;
      await log.append([sampleRecord(7), sampleRecord(8), sampleRecord(9)]);

      await assert.rejects(tail.next(), (err: unknown) => (err as { code?: string }).code === "ERR_AUDIT_TAIL_TOO_SLOW");
    });
  });

  it("format renders one line with the key fields", async () => {
    const [record] = await queryAuditLog(log, { decision: "deny" });
    const line = formatRecord(record);

    assert.equal(line.includes("\n"), false);
    assert.match(line, /^2026-12-04T12:00:00\.000Z #4 query\.denied tenant=acme /);
    assert.match(line, /spiffe:\/\/operator\.example\/service\/reports -> spiffe:\/\/acme/);
    assert.match(line, /orders\/orders_by_customer deny rule=billing-reads-orders@v3/);
  });
});
