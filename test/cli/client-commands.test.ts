import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { silentLogger } from "../../services/core/log.js";
import { startDevStack, type DevStack } from "../../services/dev/stack.js";
import { EWII_BIN, freePort, makeTempDir, parseJson, REPO_ROOT, runEwii, startEwii, type EwiiResult } from "./helpers.js";

/** Reads a whole JSON document from stdin and prints its size and row counts, as a program reading the pipe would. */
const JSON_PIPE_READER = `
let text = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (text += chunk));
process.stdin.on("end", () => {
  const body = JSON.parse(text);
  process.stdout.write(JSON.stringify({ bytes: Buffer.byteLength(text), rows: body.rows.length, rowCount: body.summary.rowCount }));
});
`;

/** Runs `ewii --json query ... | node -e JSON_PIPE_READER` in a shell, so ewii writes into a real pipe. */
function runPipedQuery(home: string, queryArgs: string[]): Promise<EwiiResult> {
  const script = `"$NODE" "$EWII_BIN" --home "$EWII_TEST_HOME" --json query ${queryArgs.join(" ")} | "$NODE" -e "$READER"`;
  const env = { ...process.env, NODE: process.execPath, EWII_BIN, EWII_TEST_HOME: home, READER: JSON_PIPE_READER };
  return new Promise((resolve, reject) => {
    execFile("bash", ["-c", `set -o pipefail; ${script}`], { env, cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== "number") {
        reject(err);
        return;
      }
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
    });
  });
}

function assertFailure(result: EwiiResult, code: string, mentions: string[]): void {
  assert.notEqual(result.code, 0, `expected a non-zero exit, stdout:\n${result.stdout}`);
  assert.match(result.stderr, new RegExp(`^ewii: ${code}: `), result.stderr);
  for (const text of mentions) assert.ok(result.stderr.includes(text), `expected "${text}" in: ${result.stderr}`);
}

describe("ewii client commands", function () {
  this.timeout(180_000);
  let dir: ReturnType<typeof makeTempDir>;
  let stack: DevStack;
  let demoConfig: Record<string, unknown> & { datasets: { chinook: Record<string, unknown> } };

  before(async () => {
    dir = makeTempDir("client-commands");
    stack = await startDevStack({ home: join(dir.path, "home"), basePort: 0, logger: silentLogger() });
    demoConfig = parseYaml(readFileSync(join(stack.home, "clients", "acme-site-1", "client.yaml"), "utf8")) as typeof demoConfig;
  });

  after(async () => {
    await stack?.close();
    dir?.remove();
  });

  /** Writes a copy of the demo client's config with `overrides` and returns its path. */
  function clientConfigFile(name: string, overrides: Record<string, unknown>, dataset: Record<string, unknown> = {}): string {
    const file = join(dir.path, `${name}.yaml`);
    const config = { ...demoConfig, ...overrides, datasets: { chinook: { ...demoConfig.datasets.chinook, ...dataset } } };
    writeFileSync(file, stringifyYaml(config));
    return file;
  }

  async function createToken(path: string): Promise<string> {
    const result = await runEwii(["--home", stack.home, "--json", "token", "create", "--tenant", "acme", "--path", path]);
    return parseJson<{ token: string }>(result).token;
  }

  describe("client run", () => {
    it("stays up without a reachable relay", async () => {
      const closedPort = await freePort();
      const file = clientConfigFile("unreachable", { relays: [`127.0.0.1:${closedPort}`], reconnect: { initial_ms: 50, max_ms: 100 } });
      const client = startEwii(["client", "run", "--config", file]);

      try {
        // Each retry needs the process to outlive a reconnect timer, which is the only timer left once the dial fails.
        await client.waitForOutput('"attempt":5');
        assert.equal(client.child.exitCode, null, client.output());
      } finally {
        await client.stop();
      }

      assert.equal(client.child.exitCode, 0, client.output());
    });

    it("rejects a missing SQLite file at start", async () => {
      const missing = join(dir.path, "nope.sqlite");
      const file = clientConfigFile("missing-sqlite", {}, { path: missing });

      const result = await runEwii(["client", "run", "--config", file]);

      assertFailure(result, "ERR_CONFIG_INVALID", ["datasets.chinook.path", missing]);
    });
  });

  describe("query output", () => {
    it("large --json result survives a pipe", async () => {
      const result = await runPipedQuery(stack.home, ["--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "invoice_lines_all"]);

      assert.equal(result.code, 0, result.stderr);
      const read = JSON.parse(result.stdout) as { bytes: number; rows: number; rowCount: number };
      assert.ok(read.bytes > 64 * 1024, `only ${read.bytes} bytes: the output must exceed one pipe buffer`);
      assert.equal(read.rows, 2240);
      assert.equal(read.rowCount, 2240);
    });
  });

  describe("client enroll", () => {
    it("rejects a file as --dir before using the token", async () => {
      const token = await createToken("/client/enroll-file");
      const file = join(dir.path, "a-file");
      writeFileSync(file, "not a folder\n");

      const refused = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", token, "--dir", file]);
      const retried = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", token, "--dir", join(dir.path, "enroll-file")]);

      assertFailure(refused, "ERR_USAGE", [file]);
      assert.equal(refused.code, 2);
      assert.equal(retried.code, 0, retried.stderr);
    });

    it("rejects /proc as --dir", async () => {
      const target = "/proc/ewii-identity";

      const result = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", "unused", "--dir", target]);

      assertFailure(result, "ERR_USAGE", [target]);
    });

    it("rejects a folder under a file", async () => {
      const file = join(dir.path, "another-file");
      writeFileSync(file, "not a folder\n");

      const result = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", "unused", "--dir", join(file, "identity")]);

      assertFailure(result, "ERR_USAGE", [join(file, "identity")]);
    });

    it("keeps an existing identity", async () => {
      const token = await createToken("/client/enroll-twice");
      const identity = join(dir.path, "enroll-twice");
      mkdirSync(identity);
      writeFileSync(join(identity, "svid.pem"), "existing\n");

      const refused = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", token, "--dir", identity]);

      assertFailure(refused, "ERR_IDENTITY_EXISTS", [join(identity, "svid.pem"), "--force"]);
      assert.equal(readFileSync(join(identity, "svid.pem"), "utf8"), "existing\n");
    });

    it("--force replaces an existing identity", async () => {
      const token = await createToken("/client/enroll-twice");
      const identity = join(dir.path, "enroll-twice");

      const result = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", token, "--dir", identity, "--force"]);

      assert.equal(result.code, 0, result.stderr);
      assert.match(readFileSync(join(identity, "svid.pem"), "utf8"), /^-----BEGIN CERTIFICATE-----/);
    });

    it("leaves no folder after a failed enrollment", async () => {
      const identity = join(dir.path, "bad-token");

      const result = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", "not-a-token", "--dir", identity]);

      assert.notEqual(result.code, 0);
      assert.equal(existsSync(identity), false);
    });
  });
});
