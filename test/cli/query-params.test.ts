import assert from "node:assert/strict";
import { parseParam, parseParams } from "../../services/cli/commands/query.js";
import { runEwii } from "./helpers.js";

function usageMessage(parse: () => unknown): string {
  try {
    parse();
  } catch (err) {
    assert.equal((err as { code?: string }).code, "ERR_USAGE");
    return (err as Error).message;
  }
  assert.fail("the parameters were accepted");
}

describe("CLI query parameters", () => {
  describe("parseParam", () => {
    it("infers an integer", () => {
      assert.deepEqual(parseParam("customer_id=7"), ["customer_id", { intValue: 7n }]);
    });

    it("takes int64 bounds", () => {
      assert.deepEqual(parseParam("n=9223372036854775807"), ["n", { intValue: 2n ** 63n - 1n }]);
      assert.deepEqual(parseParam("n=-9223372036854775808"), ["n", { intValue: -(2n ** 63n) }]);
    });

    it("rejects an integer past int64", () => {
      const message = usageMessage(() => parseParam("n=9223372036854775808"));
      assert.match(message, /^parameter n is outside the int64 range/);
    });

    it("rejects an integer below int64", () => {
      const message = usageMessage(() => parseParam("n:int=-9223372036854775809"));
      assert.match(message, /^parameter n is outside the int64 range/);
    });

    it("parses a typed real with exponent", () => {
      assert.deepEqual(parseParam("ratio:real=1e3"), ["ratio", { doubleValue: 1000 }]);
    });

    it("rejects an empty real", () => {
      assert.match(usageMessage(() => parseParam("ratio:real=")), /^parameter ratio is typed real but "" is not a number/);
    });

    it("rejects an infinite real", () => {
      assert.match(usageMessage(() => parseParam("ratio:real=1e400")), /^parameter ratio is too large for a double/);
    });
  });

  describe("parseParams", () => {
    it("rejects a duplicate name", () => {
      const message = usageMessage(() => parseParams(["customer_id=7", "customer_id=8"]));
      assert.match(message, /^parameter customer_id is given more than once/);
    });

    it("keeps __proto__ as a parameter", () => {
      const params = parseParams(["__proto__=x"]);
      assert.deepEqual(Object.keys(params), ["__proto__"]);
    });
  });

  describe("ewii query", () => {
    it("out-of-range integer is a usage error", async () => {
      const result = await runEwii(["--home", "/nonexistent-ewii-home", "query", "--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "q", "n=99999999999999999999"]);

      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^ewii: ERR_USAGE: parameter n is outside the int64 range/);
    });

    it("duplicate parameter is a usage error", async () => {
      const result = await runEwii(["--home", "/nonexistent-ewii-home", "query", "--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "q", "customer_id=7", "customer_id=8"]);

      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^ewii: ERR_USAGE: parameter customer_id is given more than once/);
    });
  });
});
