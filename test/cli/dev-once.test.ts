import assert from "node:assert/strict";
import { join } from "node:path";
import { makeTempDir, runEwii, type EwiiResult } from "./helpers.js";

describe("ewii dev --once", function () {
  this.timeout(180_000);
  let dir: ReturnType<typeof makeTempDir>;
  let result: EwiiResult;

  before(async () => {
    dir = makeTempDir("dev-once");
    // The demo client runs its SQLite queries in a forked child process, which must load TypeScript too.
    result = await runEwii(["dev", "--once", "--base-port", "0", "--data-dir", join(dir.path, "home")]);
  });

  after(() => {
    dir?.remove();
  });

  it("exits 0", () => {
    assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  });

  it("prints the demo tables", () => {
    assert.match(result.stdout, /== Revenue by country/);
    assert.match(result.stdout, /│ country\s+│ invoices\s+│ revenue\s+│/);
    assert.match(result.stdout, /│ track_id\s+│ track\s+│ artist\s+│ units_sold\s+│/);
    assert.match(result.stdout, /24 rows/);
  });

  it("shows both refusals", () => {
    assert.match(result.stdout, /refused: ERR_POLICY_DENIED/);
    assert.match(result.stdout, /refused: ERR_QUERY_UNKNOWN/);
  });

  it("verifies the audit chain", () => {
    assert.match(result.stdout, /audit chain: verified/);
  });
});
