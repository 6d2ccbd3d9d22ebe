import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../../services/core/log.js";
import { startDevStack, type DevStack } from "../../services/dev/stack.js";
import { freePort, makeTempDir, runEwii, startEwii, type EwiiResult } from "./helpers.js";

function assertFailure(result: EwiiResult, code: string, mentions: string[]): void {
  const lines = result.stderr.trim().split("\n");
  assert.notEqual(result.code, 0, `expected a non-zero exit, stdout:\n${result.stdout}`);
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${result.stderr}`);
  assert.ok(lines[0]!.startsWith(`ewii: ${code}: `), lines[0]);
  for (const text of mentions) assert.ok(lines[0]!.includes(text), `expected "${text}" in: ${lines[0]}`);
}

describe("ewii command errors", function () {
  this.timeout(120_000);
  let dir: ReturnType<typeof makeTempDir>;
  let stack: DevStack;
  let ewii: (...args: string[]) => Promise<EwiiResult>;
  let tenantIdentity: string;

  before(async () => {
    dir = makeTempDir("cli-errors");
    stack = await startDevStack({ home: join(dir.path, "home"), basePort: 0, logger: silentLogger() });
    ewii = (...args) => runEwii(["--home", stack.home, ...args]);
    tenantIdentity = join(stack.home, "clients", "acme-site-1", "identity");
  });

  after(async () => {
    await stack?.close();
    dir?.remove();
  });

  it("crl to a missing folder names the path", async () => {
    const file = join(dir.path, "no-such-folder", "acme.crl");

    const result = await ewii("crl", "acme", "-o", file);

    assertFailure(result, "ERR_USAGE", [file, "ENOENT"]);
    assert.equal(result.code, 2);
  });

  for (const command of [["policy", "show"], ["audit", "verify"]]) {
    it(`tenant SVID on ${command.join(" ")} is unavailable`, async () => {
      const result = await ewii("--credentials", tenantIdentity, ...command);

      assertFailure(result, "ERR_UNAVAILABLE", [stack.clientSpiffeId, "operator trust domain operator.example", "--credentials"]);
      assert.ok(!result.stderr.includes("Resolution note"), result.stderr);
    });
  }

  it("stopped service is unavailable", async () => {
    const endpoints = join(dir.path, "endpoints-closed.json");
    writeFileSync(endpoints, JSON.stringify({ ...stack.endpoints, policy: `127.0.0.1:${await freePort()}` }));

    const result = await ewii("--endpoints", endpoints, "policy", "show");

    assertFailure(result, "ERR_UNAVAILABLE", ["check that the service is running", "--endpoints FILE", "not expired or revoked"]);
  });

  it("audit query rejects a bad tenant", async () => {
    const result = await ewii("audit", "query", "--tenant", "BAD");

    assertFailure(result, "ERR_USAGE", ['"BAD"', "--tenant"]);
    assert.equal(result.code, 2);
  });

  it("audit query rejects a bad principal", async () => {
    const result = await ewii("audit", "query", "--principal", "reports");

    assertFailure(result, "ERR_USAGE", ['"reports"', "--principal", "spiffe://operator.example/caller/reports"]);
  });

  it("audit query rejects a bad client", async () => {
    const result = await ewii("audit", "query", "--client", "/client/site-1");

    assertFailure(result, "ERR_USAGE", ['"/client/site-1"', "--client"]);
  });

  it("audit query rejects a bad decision", async () => {
    const result = await ewii("audit", "query", "--decision", "maybe");

    assertFailure(result, "ERR_USAGE", ['"maybe"', "allow", "deny"]);
  });

  it("audit query takes valid filters", async () => {
    const result = await ewii("audit", "query", "--tenant", "acme", "--client", stack.clientSpiffeId, "--principal", "spiffe://operator.example/caller/reports", "--decision", "allow");

    assert.equal(result.code, 0, result.stderr);
  });

  it("query --timeout 0 is a usage error", async () => {
    const result = await ewii("query", "--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "revenue_by_country", "--timeout", "0");

    assertFailure(result, "ERR_USAGE", ["--timeout", '"0"']);
    assert.equal(result.code, 2);
  });

  it("query past its deadline names --timeout", async () => {
    // One millisecond is shorter than the TLS handshake alone, so the deadline always expires in the CLI.
    const result = await ewii("query", "--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "revenue_by_country", "--timeout", "1");

    assertFailure(result, "ERR_DEADLINE_EXCEEDED", ["timed out after 1 ms", "pass a larger --timeout"]);
  });

  it("audit tail --after 0 prints stored records", async () => {
    const query = await ewii("query", "--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "customer_invoices", "customer_id=7");
    assert.equal(query.code, 0, query.stderr);
    const tail = startEwii(["--home", stack.home, "audit", "tail", "--after", "0"]);

    try {
      await tail.waitForOutput("query.completed");
      assert.match(tail.output(), / #1 query\.started /);
    } finally {
      await tail.stop();
    }
  });

  for (const command of [["bundle", "show"], ["policy", "show"]]) {
    it(`${command.join(" ")} help says it prints the document`, async () => {
      const result = await runEwii([...command, "--help"]);

      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /the document itself/);
    });
  }
});
