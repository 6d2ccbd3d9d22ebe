import assert from "node:assert/strict";
import { appendFile, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AuditErrorCode } from "../../services/audit/errors.js";
import { verifyAuditLog } from "../../services/audit/verify.js";
import { capturingLogger, checkpointKeys, openLog, sampleRecord, segmentLines, tempDir, writeSegmentLines } from "./helpers.js";
import type { TempDir } from "./helpers.js";

const SEGMENT = "segment-00000000000000000001.jsonl";

describe("AuditLog", () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir.remove();
  });

  it("append assigns sequences and chain fields", async () => {
    const now = new Date("2026-12-04T10:00:00.000Z");
    const log = await openLog(dir.path, { now: () => now, checkpointEveryRecords: 100 });
    const [first, second] = await log.append([sampleRecord(1), sampleRecord(2)]);
    await log.close();

    assert.equal(first.sequence, 1n);
    assert.equal(second.sequence, 2n);
    assert.equal(first.previousHash, "0".repeat(64));
    assert.equal(second.previousHash, first.hash);
    assert.match(first.hash, /^[0-9a-f]{64}$/);
    assert.deepEqual(first.time, now);
  });

  it("append resolves after the records are in the file", async () => {
    const log = await openLog(dir.path);
    const [record] = await log.append([sampleRecord(1)]);
    const lines = await segmentLines(dir.path);
    await log.close();

    assert.equal(lines.length >= 1, true);
    assert.equal(JSON.parse(lines[0]).hash, record.hash);
  });

  it("concurrent appends share batches", async () => {
    const log = await openLog(dir.path, { checkpointEveryRecords: 10_000 });
    const appends = Array.from({ length: 200 }, (_, i) => log.append([sampleRecord(i)]));
    const results = await Promise.all(appends);
    const stats = log.stats;
    await log.close();

    const sequences = results.map(([record]) => record.sequence);
    assert.equal(new Set(sequences).size, 200);
    assert.equal(stats.records, 200);
    assert.ok(stats.batches < 200, `expected fewer batches than appends, got ${stats.batches}`);
  });

  it("invalid record rejects the whole append", async () => {
    const log = await openLog(dir.path);
    const rejected = log.append([sampleRecord(1), sampleRecord(2, { decision: "maybe" })]);
    await assert.rejects(rejected, (err: unknown) => (err as { code?: string }).code === AuditErrorCode.recordInvalid);
    assert.equal(log.head.sequence, 0n);
    await log.close();
  });

  it("checkpoint follows every N records", async () => {
    const log = await openLog(dir.path, { checkpointEveryRecords: 3 });
    await log.append([0, 1, 2, 3, 4, 5, 6].map((i) => sampleRecord(i)));
    await log.close();
    const kinds = (await segmentLines(dir.path)).map((line) => JSON.parse(line).kind);

    assert.deepEqual(kinds.slice(0, 8), ["record", "record", "record", "checkpoint", "record", "record", "record", "checkpoint"]);
  });

  it("close writes a final checkpoint", async () => {
    const log = await openLog(dir.path, { checkpointEveryRecords: 100 });
    await log.append([sampleRecord(1)]);
    await log.close();
    const lines = await segmentLines(dir.path);

    assert.equal(JSON.parse(lines[lines.length - 1]).kind, "checkpoint");
  });

  it("reopen continues the chain", async () => {
    const keys = checkpointKeys();
    const first = await openLog(dir.path, { signingKey: keys.privateKey });
    await first.append([sampleRecord(1)]);
    const head = first.head;
    await first.close();
    const second = await openLog(dir.path, { signingKey: keys.privateKey });
    const [next] = await second.append([sampleRecord(2)]);
    await second.close();
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(next.sequence > head.sequence, true);
    assert.equal(result.ok, true, result.detail);
  });

  it("rolls to a new segment at the size limit", async () => {
    const keys = checkpointKeys();
    const log = await openLog(dir.path, { signingKey: keys.privateKey, segmentMaxBytes: 2000 });
    for (let i = 0; i < 10; i++) await log.append([sampleRecord(i)]);
    await log.close();
    const segments = (await readdir(dir.path)).filter((name) => name.startsWith("segment-"));
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.ok(segments.length > 1, `expected several segments, got ${segments.join(", ")}`);
    assert.equal(result.ok, true, result.detail);
  });

  describe("torn tail", () => {
    it("reopen cuts half a record and logs the offset", async () => {
      const log = await openLog(dir.path, { checkpointEveryRecords: 100 });
      await log.append([sampleRecord(1), sampleRecord(2)]);
      await log.close();
      const sizeBefore = (await stat(join(dir.path, SEGMENT))).size;
      const lines = await segmentLines(dir.path);
      await appendFile(join(dir.path, SEGMENT), lines[0].slice(0, lines[0].length / 2));

      const { logger, lines: logLines } = capturingLogger();
      const reopened = await openLog(dir.path, { logger });
      const head = reopened.head;
      const stored = await reopened.read(reopened.records.after(0, 10));
      await reopened.close();
      const warning = logLines.find((line) => line.message === "cut a torn tail off the audit log");

      assert.ok(warning !== undefined, "expected a warning about the torn tail");
      assert.equal(warning.level, "warn");
      assert.equal(warning.offset, sizeBefore);
      assert.equal(head.sequence, 3n);
      assert.deepEqual(stored.map((record) => record.sequence), [1n, 2n]);
    });

    it("cut bytes are kept beside the segment", async () => {
      const log = await openLog(dir.path);
      await log.append([sampleRecord(1)]);
      await log.close();
      const size = (await stat(join(dir.path, SEGMENT))).size;
      await appendFile(join(dir.path, SEGMENT), '{"kind":"rec');
      await (await openLog(dir.path)).close();

      assert.equal(await readFile(join(dir.path, `${SEGMENT}.torn-${size}`), "utf8"), '{"kind":"rec');
    });

    it("complete last line with a bad hash is cut", async () => {
      const log = await openLog(dir.path, { checkpointEveryRecords: 100 });
      await log.append([sampleRecord(1), sampleRecord(2)]);
      const lines = await segmentLines(dir.path);
      await log.close();
      const damaged = lines.slice(0, 2);
      damaged[1] = damaged[1].replace('"tenant":"acme"', '"tenant":"acmf"');
      await writeSegmentLines(dir.path, damaged);
      const reopened = await openLog(dir.path);
      const head = reopened.head.sequence;
      await reopened.close();

      assert.equal(head, 1n);
      assert.equal((await verifyAuditLog(dir.path, { publicKey: reopened.publicKey })).ok, true);
    });

    it("damage far from the end refuses to open", async () => {
      const log = await openLog(dir.path, { checkpointEveryRecords: 100 });
      await log.append([sampleRecord(1), sampleRecord(2)]);
      await log.close();
      const lines = await segmentLines(dir.path);
      // Valid JSON bulk after the damage pushes it out of the torn-write window.
      const bulk = Array.from({ length: 17_000 }, () => JSON.stringify({ filler: "x".repeat(1024) }));
      const brokenLink = lines[1].replace(/"previous_hash":"[0-9a-f]{64}"/, `"previous_hash":"${"1".repeat(64)}"`);
      await writeFile(join(dir.path, SEGMENT), [lines[0], brokenLink, ...lines.slice(2), ...bulk].map((line) => `${line}\n`).join(""));

      await assert.rejects(openLog(dir.path), (err: unknown) => (err as { code?: string }).code === AuditErrorCode.logCorrupt);
    });
  });

  describe("params", () => {
    it("files hold the digest, not the value", async () => {
      const log = await openLog(dir.path);
      const [record] = await log.append([sampleRecord(1, { paramsRawJson: JSON.stringify({ customer_id: "secret-customer-4711" }) })]);
      await log.close();
      const files = await readdir(dir.path);
      const contents = await Promise.all(files.map((name) => readFile(join(dir.path, name), "utf8")));

      assert.match(record.paramsDigest, /^[0-9a-f]{64}$/);
      assert.equal(record.paramsRawJson, "");
      assert.equal(contents.some((text) => text.includes("secret-customer-4711")), false);
    });

    it("raw dataset keeps canonical params", async () => {
      const log = await openLog(dir.path, { rawParamsDatasets: ["orders"] });
      const [record] = await log.append([sampleRecord(1, { paramsRawJson: '{"b":2,"a":"x"}' })]);
      await log.close();

      assert.equal(record.paramsRawJson, '{"a":"x","b":2}');
      assert.match(record.paramsDigest, /^[0-9a-f]{64}$/);
    });

    it("digest ignores key order", async () => {
      const log = await openLog(dir.path);
      const [one, two] = await log.append([sampleRecord(1, { paramsRawJson: '{"a":1,"b":2}' }), sampleRecord(2, { paramsRawJson: '{"b":2,"a":1}' })]);
      await log.close();

      assert.equal(one.paramsDigest, two.paramsDigest);
    });

    it("invalid params JSON is rejected without echoing it", async () => {
      const log = await openLog(dir.path);
      const rejected = log.append([sampleRecord(1, { paramsRawJson: "{secret-value" })]);
      await assert.rejects(rejected, (err: unknown) => err instanceof Error && !err.message.includes("secret-value"));
      await log.close();
    });
  });
});
