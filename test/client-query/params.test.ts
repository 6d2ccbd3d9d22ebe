import { strict as assert } from "node:assert";
import type { ApprovedQuery } from "../../services/client/query/catalog.js";
import { validateParams } from "../../services/client/query/params.js";
import type { Value } from "../../gen/ewii/tunnel/v1/tunnel.js";

const QUERY: ApprovedQuery = {
  id: "scaled",
  sql: "SELECT :ratio * :count AS scaled",
  sqlSha256: "0".repeat(64),
  params: [
    { name: "ratio", type: "real", required: true },
    { name: "count", type: "integer", required: true },
  ],
  maxRows: 10,
};

function validatedRatio(ratio: Value): Value {
  return validateParams(QUERY, { ratio, count: { intValue: 3n } })[0]!.value;
}

function paramsError(params: Record<string, Value>): { code: string; message: string } {
  try {
    validateParams(QUERY, params);
  } catch (err) {
    return err as { code: string; message: string };
  }
  assert.fail("the parameters were accepted");
}

const OPTIONAL: ApprovedQuery = { ...QUERY, id: "optional_count", params: [{ name: "count", type: "integer", required: false }] };

describe("query parameters", () => {
  it("optional parameter left out binds NULL", () => {
    assert.deepEqual(validateParams(OPTIONAL, {}), [{ name: "count", value: { nullValue: true } }]);
  });

  it("optional parameter takes NULL", () => {
    assert.deepEqual(validateParams(OPTIONAL, { count: { nullValue: true } }), [{ name: "count", value: { nullValue: true } }]);
  });

  it("optional parameter still checks its type", () => {
    assert.throws(() => validateParams(OPTIONAL, { count: { stringValue: "3" } }), /parameter count must be of type integer/);
  });

  it("required parameter rejects NULL", () => {
    const err = paramsError({ ratio: { nullValue: true }, count: { intValue: 3n } });

    assert.equal(err.code, "ERR_QUERY_PARAMS_INVALID");
    assert.match(err.message, /parameter ratio must not be NULL; .*set required: false there to allow NULL/);
  });

  it("real takes a double", () => {
    assert.deepEqual(validatedRatio({ doubleValue: 1.5 }), { doubleValue: 1.5 });
  });

  it("real takes an integer as double", () => {
    assert.deepEqual(validatedRatio({ intValue: 1n }), { doubleValue: 1 });
  });

  it("real takes ±2^53", () => {
    assert.deepEqual(validatedRatio({ intValue: 2n ** 53n }), { doubleValue: 2 ** 53 });
    assert.deepEqual(validatedRatio({ intValue: -(2n ** 53n) }), { doubleValue: -(2 ** 53) });
  });

  it("real rejects an integer past 2^53", () => {
    const err = paramsError({ ratio: { intValue: 2n ** 53n + 1n }, count: { intValue: 3n } });
    assert.equal(err.code, "ERR_QUERY_PARAMS_INVALID");
    assert.match(err.message, /^parameter ratio /);
    assert.match(err.message, /2\^53/);
    assert.ok(!err.message.includes("9007199254740993"), "the message must not echo the value");
  });

  it("real rejects an integer below -2^53", () => {
    const err = paramsError({ ratio: { intValue: -(2n ** 53n) - 1n }, count: { intValue: 3n } });
    assert.equal(err.code, "ERR_QUERY_PARAMS_INVALID");
    assert.match(err.message, /^parameter ratio /);
  });

  it("integer rejects a double", () => {
    const err = paramsError({ ratio: { doubleValue: 1 }, count: { doubleValue: 3 } });
    assert.equal(err.code, "ERR_QUERY_PARAMS_INVALID");
    assert.match(err.message, /^parameter count must be of type integer/);
  });

  it("real rejects text", () => {
    const err = paramsError({ ratio: { stringValue: "1" }, count: { intValue: 3n } });
    assert.match(err.message, /^parameter ratio must be of type real/);
  });
});
