import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { silentLogger } from "../../services/core/log.js";
import { startDevStack, type DevStack } from "../../services/dev/stack.js";
import { freePort, makeTempDir, startEwii } from "./helpers.js";

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
  });
});
