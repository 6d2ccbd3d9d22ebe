import { strict as assert } from "node:assert";
import { placeholderNames, toPositional } from "../../services/core/sql/placeholders.js";

describe("SQL placeholders", () => {
  it("rewrites names in order of first use", () => {
    const result = toPositional("SELECT * FROM t WHERE a = :b AND c = :a OR d = :b");
    assert.equal(result.text, "SELECT * FROM t WHERE a = $1 AND c = $2 OR d = $1");
    assert.deepEqual(result.names, ["b", "a"]);
  });

  it("skips string literals", () => {
    assert.deepEqual(placeholderNames("SELECT ':no', 'it''s :no' FROM t WHERE x = :yes"), ["yes"]);
  });

  it("skips E strings with backslash escapes", () => {
    assert.deepEqual(placeholderNames("SELECT E'a\\' :no' , :yes"), ["yes"]);
  });

  it("skips quoted identifiers", () => {
    assert.deepEqual(placeholderNames('SELECT ":no", [:no], `:no` FROM t WHERE x = :yes'), ["yes"]);
  });

  it("skips comments", () => {
    assert.deepEqual(placeholderNames("SELECT 1 -- :no\n/* :no */ WHERE x = :yes"), ["yes"]);
  });

  it("skips dollar-quoted strings", () => {
    assert.deepEqual(placeholderNames("SELECT $$ :no $$, $tag$ :no $tag$ WHERE x = :yes"), ["yes"]);
  });

  it("ignores casts", () => {
    assert.equal(toPositional("SELECT :v::numeric, x::text").text, "SELECT $1::numeric, x::text");
  });

  it("rejects an unterminated literal", () => {
    assert.throws(() => placeholderNames("SELECT ':x"), /unterminated string literal/);
  });
});
