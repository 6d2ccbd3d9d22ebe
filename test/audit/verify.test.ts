import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildCheckpoint, checkpointKeyFrom } from "../../services/audit/checkpoint.js";
import { entryHash, entryLine, parseEntryLine } from "../../services/audit/entry.js";
import type { StoredEntry } from "../../services/audit/entry.js";
import { LATEST_CHECKPOINT_FILE } from "../../services/audit/log.js";
import { queryAuditLog } from "../../services/audit/query.js";
import { recordToEntry, verifyAuditLog } from "../../services/audit/verify.js";
import { checkpointKeys, openLog, sampleRecord, segmentLines, tempDir, writeSegmentLines } from "./helpers.js";
import type { TempDir } from "./helpers.js";

/** Parses a stored line; fails the test if it does not parse. */
function parse(line: string): StoredEntry {
  const entry = parseEntryLine(line);
  assert.ok(entry !== undefined, "expected a stored entry");
  return entry;
}

/** Serializes an entry without its trailing newline. */
function serialize(entry: StoredEntry): string {
  return entryLine(entry).trimEnd();
}

describe("verifyAuditLog", () => {
  let dir: TempDir;
  const keys = checkpointKeys();
  // Sequences 1-3 records, 4 checkpoint, 5-7 records, 8 checkpoint, 9-10 records, 11 checkpoint at close.
  let lines: string[];

  beforeEach(async () => {
    dir = await tempDir();
    const log = await openLog(dir.path, { signingKey: keys.privateKey, checkpointEveryRecords: 3 });
    for (let i = 0; i < 8; i++) {
      await log.append([sampleRecord(i, i % 2 === 0 ? {} : { clientSignature: Buffer.from([1, 2, 3]), clientCertDer: Buffer.from([4]) })]);
    }
    await log.close();
    lines = await segmentLines(dir.path);
  });
  afterEach(async () => {
    await dir.remove();
  });

  it("intact log verifies", async () => {
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.ok, true, result.detail);
    assert.equal(result.checked, lines.length);
    assert.equal(result.checkpoints, 3);
  });

  it("changed field is altered at that record", async () => {
    lines[5] = lines[5].replace('"tenant":"acme"', '"tenant":"evil"');
    await writeSegmentLines(dir.path, lines);
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.problem, "altered");
    assert.equal(result.firstBadSequence, 6n);
  });

  it("changed and rehashed record is altered at that record", async () => {
    const entry = parse(lines[5]);
    entry.tenant = "evil";
    entry.hash = entryHash(entry);
    lines[5] = serialize(entry);
    await writeSegmentLines(dir.path, lines);
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.problem, "altered");
    assert.equal(result.firstBadSequence, 6n);
  });

  it("deleted record is missing", async () => {
    lines.splice(4, 1);
    await writeSegmentLines(dir.path, lines);
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.problem, "missing");
    assert.equal(result.firstBadSequence, 5n);
  });

  it("swapped records are reordered", async () => {
    [lines[4], lines[5]] = [lines[5], lines[4]];
    await writeSegmentLines(dir.path, lines);
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.problem, "reordered");
    assert.equal(result.firstBadSequence, 5n);
  });

  it("unparseable line is altered", async () => {
    lines[2] = "not json";
    await writeSegmentLines(dir.path, lines);
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.problem, "altered");
    assert.equal(result.firstBadSequence, 3n);
  });

  it("tampered checkpoint signature is bad_signature", async () => {
    const entry = parse(lines[3]);
    const signature = Buffer.from(String(entry.signature), "base64");
    signature[0] ^= 0xff;
    entry.signature = signature.toString("base64");
    entry.hash = entryHash(entry);
    lines[3] = serialize(entry);
    // Relink the next entry so only the signature is wrong.
    const next = parse(lines[4]);
    next.previous_hash = String(entry.hash);
    next.hash = entryHash(next);
    lines[4] = serialize(next);
    await writeSegmentLines(dir.path, lines);
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.problem, "bad_signature");
    assert.equal(result.firstBadSequence, 4n);
  });

  it("checkpoint under another key is bad_signature", async () => {
    const result = await verifyAuditLog(dir.path, { publicKey: checkpointKeys().publicKey });

    assert.equal(result.problem, "bad_signature");
    assert.equal(result.firstBadSequence, 4n);
  });

  it("rewritten chain with a forged checkpoint is bad_signature", async () => {
    const forger = checkpointKeyFrom(checkpointKeys().privateKey);
    const entries = lines.map(parse);
    entries[0].tenant = "evil";
    let previous = "0".repeat(64);
    const rewritten: StoredEntry[] = [];
    for (const entry of entries) {
      let next: StoredEntry;
      if (entry.kind === "checkpoint") {
        next = buildCheckpoint({ logId: String(entry.log_id), sequence: BigInt(entry.sequence), time: new Date(String(entry.time)), previousHash: previous }, forger);
      } else {
        next = { ...entry, previous_hash: previous };
        next.hash = entryHash(next);
      }
      rewritten.push(next);
      previous = String(next.hash);
    }
    await writeSegmentLines(dir.path, rewritten.map(serialize));
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey, anchor: { sequence: 4n, hash: String(parse(lines[3]).hash) } });

    assert.equal(result.problem, "bad_signature");
    assert.equal(result.firstBadSequence, 4n);
  });

  it("log cut before the latest checkpoint is truncated", async () => {
    await writeSegmentLines(dir.path, lines.slice(0, 6));
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.problem, "truncated");
    assert.equal(result.firstBadSequence, 7n);
  });

  it("anchor beyond the end is truncated", async () => {
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey, anchor: { sequence: 20n, hash: "0".repeat(64) } });

    assert.equal(result.problem, "truncated");
    assert.equal(result.firstBadSequence, BigInt(lines.length + 1));
  });

  it("tampered latest checkpoint file is bad_signature", async () => {
    const path = join(dir.path, LATEST_CHECKPOINT_FILE);
    const entry = parse((await readFile(path, "utf8")).trim());
    entry.sequence = "99";
    await writeFile(path, entryLine(entry));
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.problem, "bad_signature");
  });

  it("unterminated last line is a torn tail", async () => {
    await writeFile(join(dir.path, "segment-00000000000000000001.jsonl"), `${lines.join("\n")}\n{"kind":"rec`);
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.ok, true, result.detail);
    assert.equal(result.tornTailBytes, 12);
  });

  it("range checks only its entries", async () => {
    lines[0] = lines[0].replace('"tenant":"acme"', '"tenant":"evil"');
    await writeSegmentLines(dir.path, lines);
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey, from: 2n, to: 5n });

    assert.equal(result.ok, true, result.detail);
    assert.equal(result.checked, 4);
  });

  it("client signatures are unchecked without a callback", async () => {
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey });

    assert.equal(result.clientSignaturesUnchecked, 4);
    assert.equal(result.clientSignaturesChecked, 0);
  });

  it("failing client signature is bad_signature", async () => {
    const result = await verifyAuditLog(dir.path, { publicKey: keys.publicKey, verifyClientSignature: (record) => record.requestId !== (1000 + 3).toString(16) });

    assert.equal(result.problem, "bad_signature");
    assert.equal(result.firstBadSequence, 5n);
    assert.equal(result.clientSignaturesChecked, 2);
  });

  it("entries in memory verify", async () => {
    const result = await verifyAuditLog(lines.map(parse), { publicKey: keys.publicKey });

    assert.equal(result.ok, true, result.detail);
  });

  it("records from a query round-trip their hashes", async () => {
    const log = await openLog(dir.path, { signingKey: keys.privateKey });
    const records = await queryAuditLog(log, {});
    await log.close();
    const entries = records.map(recordToEntry);

    assert.deepEqual(entries.map((entry) => entryHash(entry) === entry.hash), records.map(() => true));
  });
});
