import assert from "node:assert/strict";
import canonicalize from "canonicalize";
import { canonicalJson, entryHash, entryLine, parseEntryLine, sealEntry } from "../../services/audit/entry.js";

describe("audit entry encoding", () => {
  const cases: Array<[string, Record<string, string | number>]> = [
    ["empty object", {}],
    ["key order", { b: "x", a: 1, A: "z" }],
    ["escapes", { text: '\u2028"\\\u0001\n' }],
    ["non-ASCII keys", { "é": "1", "\ud83d\ude00": "emoji", "\ufb00": "ligature" }],
    ["integer bounds", { max: Number.MAX_SAFE_INTEGER, negative: -5, zero: 0 }],
  ];
  for (const [name, value] of cases) {
    it(`flat canonical JSON matches RFC 8785 encoder: ${name}`, () => {
      assert.equal(canonicalJson(value), canonicalize(value));
    });
  }

  it("nested values use the RFC 8785 encoder", () => {
    const value = { b: [1.5, { d: 1, c: 2 }], a: null };
    assert.equal(canonicalJson(value), '{"a":null,"b":[1.5,{"c":2,"d":1}]}');
  });

  it("sealed line parses back with its hash", () => {
    const entry = { kind: "record", sequence: "1", tenant: "acme" };
    const line = sealEntry(entry);
    const parsed = parseEntryLine(line.trimEnd());

    assert.ok(parsed !== undefined);
    assert.equal(parsed.hash, entryHash(parsed));
    assert.equal(entryLine(parsed), line);
  });
});
