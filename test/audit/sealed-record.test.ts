import assert from "node:assert/strict";
import { RECORD_KEYS_SORTED, emptyRecord, sealEntry } from "../../services/audit/entry.js";
import type { StoredEntry } from "../../services/audit/entry.js";
import { prepareSeal, sealPrepared } from "../../services/audit/sealed-record.js";

const TIME = new Date("2026-12-04T21:30:00.123Z");
const PREVIOUS_HASH = "c".repeat(64);

describe("sealed record", () => {
  const cases: Array<[string, StoredEntry]> = [
    ["typical record", { kind: "record", event: "query.completed", tenant: "acme", rows: "42", latency_ms: 12, decision: "allow" }],
    ["escapes", { kind: "record", tenant: '\u2028"\\\u0001\n', rule: "r" }],
    ["non-ASCII text", { kind: "record", tenant: "Zürich \ud83d\ude00", dataset: "\ufb00" }],
    ["every field", Object.fromEntries(RECORD_KEYS_SORTED.filter((key) => !["sequence", "time", "previous_hash"].includes(key)).map((key, i) => [key, `v${i}`]))],
    ["kind only", { kind: "record" }],
  ];
  for (const [name, fields] of cases) {
    it(`matches sealEntry: ${name}`, () => {
      const prepared = prepareSeal({ ...fields }, emptyRecord());
      const sealed = sealPrepared(prepared, 7n, TIME, TIME.toISOString(), PREVIOUS_HASH);
      const reference: StoredEntry = { ...fields, sequence: "7", time: TIME.toISOString(), previous_hash: PREVIOUS_HASH };
      const line = sealEntry(reference);

      assert.equal(sealed.line, line);
      assert.equal(sealed.bytes, Buffer.byteLength(line, "utf8"));
      assert.equal(prepared.entry.hash, reference.hash);
    });
  }

  it("sets the record's chain fields", () => {
    const prepared = prepareSeal({ kind: "record" }, emptyRecord());
    sealPrepared(prepared, 9n, TIME, TIME.toISOString(), PREVIOUS_HASH);

    assert.equal(prepared.record.sequence, 9n);
    assert.equal(prepared.record.time?.getTime(), TIME.getTime());
    assert.equal(prepared.record.previousHash, PREVIOUS_HASH);
    assert.equal(prepared.record.hash, prepared.entry.hash);
  });

  it("rejects an entry with a chain field", () => {
    assert.throws(() => prepareSeal({ kind: "record", sequence: "1" }, emptyRecord()), TypeError);
  });

  it("rejects an unknown key", () => {
    assert.throws(() => prepareSeal({ kind: "record", zone: "z" }, emptyRecord()), TypeError);
  });
});
