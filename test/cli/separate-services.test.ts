import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { freePort, makeTempDir, parseJson, REPO_ROOT, runEwii, startEwii, type EwiiProcess, type EwiiResult } from "./helpers.js";

const OPERATOR_EXAMPLES = join(REPO_ROOT, "examples/operator");
const CLIENT_EXAMPLE = join(REPO_ROOT, "examples/client/acme-client.yaml");
const DATA_DIR = ".ewii/prod";
const SERVICES = ["ca", "policy", "audit", "relay", "hub"] as const;
const LISTENING = "gRPC server listening";

type Ports = Record<(typeof SERVICES)[number], number>;

/** Rewrites an example operator config for the ports of this run; every other key is kept as shipped. */
function adaptOperatorConfig(service: (typeof SERVICES)[number], ports: Ports): Record<string, unknown> {
  const config = parseYaml(readFileSync(join(OPERATOR_EXAMPLES, `${service}.yaml`), "utf8")) as Record<string, unknown>;
  const address = (name: keyof Ports): string => `127.0.0.1:${ports[name]}`;
  config.listen = address(service);
  if ("ca_address" in config) config.ca_address = address("ca");
  if ("policy_address" in config) config.policy_address = address("policy");
  if ("audit_address" in config) config.audit_address = address("audit");
  if ("relays" in config) config.relays = [address("relay")];
  return config;
}

async function poll(what: string, attempt: () => Promise<EwiiResult>, done: (result: EwiiResult) => boolean, tries = 40): Promise<EwiiResult> {
  let last: EwiiResult | undefined;
  for (let i = 0; i < tries; i++) {
    last = await attempt();
    if (done(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`gave up waiting for ${what}; last exit ${last?.code}, stdout:\n${last?.stdout}\nstderr:\n${last?.stderr}`);
}

describe("operator services as separate processes", function () {
  this.timeout(180_000);
  let dir: ReturnType<typeof makeTempDir>;
  const running: EwiiProcess[] = [];
  let ports: Ports;
  let cwd: string;
  let ewii: (...args: string[]) => Promise<EwiiResult>;

  before(async () => {
    dir = makeTempDir("separate");
    cwd = dir.path;
    ports = { ca: await freePort(), policy: await freePort(), audit: await freePort(), relay: await freePort(), hub: await freePort() };
    ewii = (...args) => runEwii(["--home", DATA_DIR, ...args], { cwd });
  });

  after(async () => {
    for (const child of running.reverse()) await child.stop();
    dir?.remove();
  });

  describe("ewii init", () => {
    it("ca on empty dir names ewii init", async () => {
      const result = await runEwii(["ca", "--data-dir", "empty", "--listen", "127.0.0.1:0"], { cwd });

      assert.equal(result.code, 1);
      assert.match(result.stderr, /^ewii: ERR_CA_NOT_INITIALIZED: .*"ewii init --data-dir empty"/);
    });

    it("creates the trust domain", async () => {
      const result = await runEwii(["init", "--data-dir", DATA_DIR], { cwd });

      assert.equal(result.code, 0, result.stderr);
      for (const name of ["ca", "policy", "audit", "relay", "hub", "admin", "reports"]) {
        assert.ok(result.stdout.includes(`spiffe://operator.example/`), result.stdout);
        assert.ok(existsSync(join(cwd, DATA_DIR, "credentials", name, "svid.pem")), name);
      }
    });

    it("writes private files", () => {
      const root = join(cwd, DATA_DIR);
      const modeOf = (path: string): number => statSync(path).mode & 0o777;

      assert.equal(modeOf(root), 0o700);
      assert.equal(modeOf(join(root, "kek")), 0o600);
      assert.equal(modeOf(join(root, "ca.db")), 0o600);
      assert.equal(modeOf(join(root, "credentials")), 0o700);
      for (const name of ["ca", "policy", "audit", "relay", "hub", "admin", "reports"]) {
        assert.equal(modeOf(join(root, "credentials", name)), 0o700, name);
        for (const file of ["svid.pem", "key.pem", "bundle.pem"]) assert.equal(modeOf(join(root, "credentials", name, file)), 0o600, `${name}/${file}`);
      }
    });

    it("second run is rejected", async () => {
      const result = await runEwii(["init", "--data-dir", DATA_DIR], { cwd });

      assert.equal(result.code, 1);
      assert.match(result.stderr, /^ewii: ERR_ALREADY_INITIALIZED: .*to start over, stop every service and remove/);
    });
  });

  describe("services from examples/operator", () => {
    before(() => {
      mkdirSync(join(cwd, "config"), { recursive: true });
      for (const service of SERVICES) writeFileSync(join(cwd, "config", `${service}.yaml`), stringifyYaml(adaptOperatorConfig(service, ports)));
      const endpoints = {
        operator_trust_domain: "operator.example",
        ca: `127.0.0.1:${ports.ca}`,
        policy: `127.0.0.1:${ports.policy}`,
        audit: `127.0.0.1:${ports.audit}`,
        hub: `127.0.0.1:${ports.hub}`,
        relays: [`127.0.0.1:${ports.relay}`],
      };
      writeFileSync(join(cwd, DATA_DIR, "endpoints.json"), JSON.stringify(endpoints));
    });

    it("ca answers tenant list", async () => {
      const ca = startEwii(["ca", "--config", "config/ca.yaml"], { cwd });
      running.push(ca);
      await ca.waitForOutput(LISTENING);

      const result = await runEwii(["--credentials", join(DATA_DIR, "credentials/admin"), "--endpoints", join(DATA_DIR, "endpoints.json"), "--json", "tenant", "list"], { cwd });

      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(parseJson(result), []);
    });

    it("policy, audit, relay and hub start", async () => {
      const commands: [string, string[]][] = [
        ["policy", ["policy", "serve", "--config", "config/policy.yaml"]],
        ["audit", ["audit", "serve", "--config", "config/audit.yaml"]],
        ["relay", ["relay", "--config", "config/relay.yaml"]],
        ["hub", ["hub", "--config", "config/hub.yaml"]],
      ];
      for (const [, args] of commands) {
        const child = startEwii(args, { cwd });
        running.push(child);
        await child.waitForOutput(LISTENING);
      }

      const applied = await ewii("policy", "apply", "-f", join(REPO_ROOT, "examples/policy/demo.yaml"));

      assert.equal(applied.code, 0, applied.stderr);
    });

    it("enrolled client serves a query", async () => {
      assert.equal((await ewii("tenant", "create", "acme")).code, 0);
      const token = parseJson<{ token: string }>(await ewii("--json", "token", "create", "--tenant", "acme", "--path", "/client/site-1"));
      const identity = join(cwd, "acme-client");
      const enrolled = await runEwii(["client", "enroll", "--ca", `127.0.0.1:${ports.ca}`, "--token", token.token, "--dir", identity], { cwd });
      assert.equal(enrolled.code, 0, enrolled.stderr);

      const clientConfig = parseYaml(readFileSync(CLIENT_EXAMPLE, "utf8")) as { identity_dir: string; ca: string; relays: string[]; datasets: Record<string, { path: string; queries_file: string }> };
      clientConfig.identity_dir = identity;
      clientConfig.ca = `127.0.0.1:${ports.ca}`;
      clientConfig.relays = [`127.0.0.1:${ports.relay}`];
      clientConfig.datasets.chinook.path = join(REPO_ROOT, "examples/data/chinook.sqlite");
      clientConfig.datasets.chinook.queries_file = join(REPO_ROOT, "examples/client/acme-queries.yaml");
      const clientFile = join(cwd, "config", "acme-client.yaml");
      writeFileSync(clientFile, stringifyYaml(clientConfig));
      const client = startEwii(["client", "run", "--config", clientFile], { cwd });
      running.push(client);

      // Without Redis the hub has no route registry, so `ewii clients` stays
      // empty. The query goes through the relays listed in hub.yaml.
      const query = await poll(
        "the first query",
        () => ewii("--json", "query", "--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "customer_invoices", "customer_id=7"),
        (result) => result.code === 0 || client.child.exitCode !== null,
      );
      assert.equal(query.code, 0, `query failed: ${query.stderr}\nclient output:\n${client.output()}`);
      const body = parseJson<{ columns: string[]; rows: unknown[][]; summary: { rowCount: number; rule: string } }>(query);

      assert.deepEqual(body.columns, ["invoice_id", "invoice_date", "billing_country", "total"]);
      assert.equal(body.rows.length, body.summary.rowCount);
      assert.ok(body.rows.length > 0);
      assert.equal(body.summary.rule, "allow-callers-chinook");
    });

    it("audit holds the query", async () => {
      const result = await ewii("--json", "audit", "query", "--tenant", "acme");
      const events = result.stdout.trim().split("\n").map((line) => (JSON.parse(line) as { event: string }).event);

      assert.ok(events.includes("query.started"), result.stdout);
      assert.ok(events.includes("query.completed"), result.stdout);
    });
  });
});

describe("example client config", () => {
  it("dials the example CA and relay", () => {
    const client = parseYaml(readFileSync(CLIENT_EXAMPLE, "utf8")) as { ca: string; relays: string[] };
    const listenOf = (service: "ca" | "relay"): string => (parseYaml(readFileSync(join(OPERATOR_EXAMPLES, `${service}.yaml`), "utf8")) as { listen: string }).listen;

    assert.equal(client.ca, listenOf("ca"));
    assert.deepEqual(client.relays, [listenOf("relay")]);
  });
});
