import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import type { ResultSummary, Value } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { canonicalParamsBytes, canonicalSummaryBytes, paramsSha256, signSummary, verifySummarySignature } from "../../services/client/query/summary.js";
import { testKeys } from "./helpers.js";

const keys = testKeys();
const HASH_A = "a".repeat(64);
const HASH_B = "b".repeat(64);

function signed(): ResultSummary {
  const summary: ResultSummary = {
    requestId: randomBytes(16),
    status: "ok",
    message: "",
    rowCount: 3n,
    byteCount: 120n,
    rowsSha256: HASH_A,
    sqlSha256: HASH_B,
    paramsSha256: "c".repeat(64),
    signature: Buffer.alloc(0),
    signerSerial: "01",
    elapsedMs: 4,
  };
  return { ...summary, signature: signSummary(summary, keys.privateKey) };
}

describe("result summary signature", () => {
  it("verifies when unchanged", () => {
    assert.ok(verifySummarySignature(signed(), keys.publicKey));
  });

  const changes: Array<[string, (s: ResultSummary) => ResultSummary]> = [
    ["request_id", (s) => ({ ...s, requestId: randomBytes(16) })],
    ["status", (s) => ({ ...s, status: "ERR_QUERY_ROW_CAP" })],
    ["row_count", (s) => ({ ...s, rowCount: 4n })],
    ["byte_count", (s) => ({ ...s, byteCount: 121n })],
    ["rows_sha256", (s) => ({ ...s, rowsSha256: HASH_B })],
    ["sql_sha256", (s) => ({ ...s, sqlSha256: HASH_A })],
    ["params_sha256", (s) => ({ ...s, paramsSha256: HASH_A })],
    ["signature", (s) => ({ ...s, signature: Buffer.concat([s.signature.subarray(0, -1), Buffer.from([s.signature.at(-1)! ^ 1])]) })],
  ];
  for (const [field, change] of changes) {
    it(`fails after changing ${field}`, () => {
      assert.equal(verifySummarySignature(change(signed()), keys.publicKey), false);
    });
  }

  it("fails with another key", () => {
    assert.equal(verifySummarySignature(signed(), testKeys().publicKey), false);
  });

  it("rejects a newline inside a hash", () => {
    const summary = { ...signed(), sqlSha256: `${HASH_A.slice(0, 32)}\n${HASH_A.slice(33)}` };
    assert.throws(() => canonicalSummaryBytes(summary), TypeError);
    assert.equal(verifySummarySignature(summary, keys.publicKey), false);
  });

  it("canonical bytes start with the label", () => {
    assert.ok(canonicalSummaryBytes(signed()).toString("utf8").startsWith("ewii-result-v1\n"));
  });
});

describe("canonical parameters", () => {
  const salt = randomBytes(32);
  const digest = (params: Record<string, Value>): string => paramsSha256(params, salt);

  it("ignores map order", () => {
    assert.equal(digest({ a: { intValue: 1n }, b: { stringValue: "x" } }), digest({ b: { stringValue: "x" }, a: { intValue: 1n } }));
  });

  it("separates types", () => {
    assert.notEqual(digest({ a: { intValue: 1n } }), digest({ a: { doubleValue: 1 } }));
    assert.notEqual(digest({ a: { stringValue: "1" } }), digest({ a: { bytesValue: Buffer.from("1") } }));
  });

  it("separates name and value boundaries", () => {
    assert.notEqual(digest({ ab: { stringValue: "c" } }), digest({ a: { stringValue: "bc" } }));
  });

  it("depends on the salt", () => {
    assert.notEqual(digest({ a: { intValue: 1n } }), paramsSha256({ a: { intValue: 1n } }, randomBytes(32)));
  });

  it("encodes an empty map", () => {
    assert.equal(canonicalParamsBytes({}).toString("hex"), Buffer.concat([Buffer.from("ewii-params-v1\n"), Buffer.alloc(4)]).toString("hex"));
  });
});
