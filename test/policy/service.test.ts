import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { Effect, PolicyServiceClient } from "../../gen/ewii/policy/v1/policy.js";
import { errorCodeOf, isEwiiError } from "../../services/core/errors.js";
import { TlsMaterialSource, callUnary, channelOptions, createClientCredentials, dialTarget, type TlsMaterial } from "../../services/core/grpc/index.js";
import { silentLogger } from "../../services/core/log.js";
import { applyPolicyFile } from "../../services/policy/apply-cli.js";
import type { CompiledPolicy } from "../../services/policy/compile.js";
import { policyConfigSchema, startPolicyService, type RunningPolicyService } from "../../services/policy/server.js";
import { PolicySnapshotCache } from "../../services/policy/watcher.js";
import { createTestCa, issueTestLeaf, testVerifier, tlsMaterial, type TestCa } from "../grpc/helpers.js";
import { DEMO_CALLER, DEMO_POLICY_PATH, DEMO_POLICY_YAML, baseDocument, int, toYaml } from "./helpers.js";

const OPERATOR_DOMAIN = "operator.example";
const SERVER_ID = `spiffe://${OPERATOR_DOMAIN}/policy`;

interface Harness {
  dir: string;
  operatorCa: TestCa;
  tenantCa: TestCa;
  running: RunningPolicyService;
  clients: PolicyServiceClient[];
  client(material: TlsMaterial, address?: string): PolicyServiceClient;
}

async function startHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "ewii-policy-grpc-"));
  const operatorCa = await createTestCa(OPERATOR_DOMAIN);
  const tenantCa = await createTestCa("acme.tenants.operator.example");
  const serverLeaf = await issueTestLeaf(operatorCa, "/policy", { dnsName: "localhost" });
  const config = policyConfigSchema.parse({ listen: "127.0.0.1:0", data_dir: dir, credentials_dir: join(dir, "unused"), operator_trust_domain: OPERATOR_DOMAIN });
  const running = await startPolicyService(config, {
    logger: silentLogger(),
    verifyPeer: testVerifier([operatorCa, tenantCa]),
    tls: new TlsMaterialSource(tlsMaterial(serverLeaf, [operatorCa, tenantCa])),
  });
  const clients: PolicyServiceClient[] = [];
  return {
    dir,
    operatorCa,
    tenantCa,
    running,
    clients,
    client: (material, address = running.server.address) => {
      const target = dialTarget(address);
      const credentials = createClientCredentials({ tls: material, trustedCasPem: operatorCa.pem, expectServer: (id) => id === SERVER_ID });
      const client = new PolicyServiceClient(target, credentials, channelOptions(target));
      clients.push(client);
      return client;
    },
  };
}

async function materialFor(ca: TestCa, path: string, trusted: TestCa): Promise<TlsMaterial> {
  return tlsMaterial(await issueTestLeaf(ca, path), [trusted]);
}

function nextVersion(cache: PolicySnapshotCache, version: number): Promise<CompiledPolicy> {
  const current = cache.current();
  if (current !== undefined && current.version >= version) return Promise.resolve(current);
  return new Promise((resolve) => {
    const unsubscribe = cache.onUpdate((policy) => {
      if (policy.version >= version) {
        unsubscribe();
        resolve(policy);
      }
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function rejection(promise: Promise<unknown>): Promise<{ code: number; errorCode: string | undefined; details: string }> {
  try {
    await promise;
  } catch (err: unknown) {
    const error = err as { code: number; details: string };
    return { code: error.code, errorCode: errorCodeOf(err), details: error.details };
  }
  assert.fail("the call succeeded");
}

describe("policy service over mTLS", () => {
  let harness: Harness;
  let admin: PolicyServiceClient;
  let workload: PolicyServiceClient;

  beforeEach(async () => {
    harness = await startHarness();
    admin = harness.client(await materialFor(harness.operatorCa, "/admin/alice", harness.operatorCa));
    workload = harness.client(await materialFor(harness.operatorCa, "/hub/1", harness.operatorCa));
  });

  afterEach(async () => {
    for (const client of harness.clients) client.close();
    await harness.running.close();
    rmSync(harness.dir, { recursive: true, force: true });
  });

  it("admin applies a version", async () => {
    const response = await callUnary(admin.apply.bind(admin), { documentYaml: DEMO_POLICY_YAML, sourceName: "demo.yaml" });
    assert.equal(response.version, 1n);
    assert.match(response.documentSha256, /^[0-9a-f]{64}$/);
  });

  it("rejects apply by non-admin", async () => {
    const error = await rejection(callUnary(workload.apply.bind(workload), { documentYaml: DEMO_POLICY_YAML, sourceName: "demo.yaml" }));
    assert.equal(error.code, status.PERMISSION_DENIED);
    assert.equal(error.errorCode, "ERR_POLICY_PERMISSION_DENIED");
  });

  it("rejects apply by tenant identity", async () => {
    const tenantAdmin = harness.client(await materialFor(harness.tenantCa, "/admin/mallory", harness.operatorCa));
    const error = await rejection(callUnary(tenantAdmin.apply.bind(tenantAdmin), { documentYaml: DEMO_POLICY_YAML, sourceName: "demo.yaml" }));
    assert.equal(error.code, status.PERMISSION_DENIED);
  });

  it("invalid apply names the field", async () => {
    const bad = baseDocument();
    bad.rules[0].datasets = ["crm"];
    const error = await rejection(callUnary(admin.apply.bind(admin), { documentYaml: toYaml(bad), sourceName: "bad.yaml" }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.errorCode, "ERR_POLICY_INVALID");
    assert.match(error.details, /bad\.yaml: rules\[0\]\.datasets\[0\]: unknown dataset "crm"/);
  });

  it("get policy returns snapshot", async () => {
    await callUnary(admin.apply.bind(admin), { documentYaml: DEMO_POLICY_YAML, sourceName: "demo.yaml" });
    const response = await callUnary(workload.getPolicy.bind(workload), {});
    assert.equal(response.snapshot?.version, 1n);
    assert.equal(response.snapshot?.appliedBy, `spiffe://${OPERATOR_DOMAIN}/admin/alice`);
  });

  it("get policy before apply is not found", async () => {
    const error = await rejection(callUnary(workload.getPolicy.bind(workload), {}));
    assert.equal(error.code, status.NOT_FOUND);
  });

  it("evaluates over the wire", async () => {
    await callUnary(admin.apply.bind(admin), { documentYaml: DEMO_POLICY_YAML, sourceName: "demo.yaml" });
    const allowed = await callUnary(workload.evaluate.bind(workload), { principal: DEMO_CALLER, tenant: "acme", dataset: "chinook", queryId: "customer_invoices", params: { customer_id: int(5) } });
    assert.equal(allowed.effect, Effect.EFFECT_ALLOW);
    assert.equal(allowed.rule, "allow-callers-chinook");
    assert.equal(allowed.policyVersion, 1n);
    assert.equal(allowed.maxRows, 500);
    const denied = await callUnary(workload.evaluate.bind(workload), { principal: DEMO_CALLER, tenant: "acme", dataset: "chinook", queryId: "employee_list", params: {} });
    assert.equal(denied.effect, Effect.EFFECT_DENY);
    assert.equal(denied.rule, "deny-employee-list");
    assert.equal(denied.requestError, "");
  });

  it("evaluate names a request error", async () => {
    await callUnary(admin.apply.bind(admin), { documentYaml: DEMO_POLICY_YAML, sourceName: "demo.yaml" });
    const invalid = await callUnary(workload.evaluate.bind(workload), { principal: DEMO_CALLER, tenant: "acme", dataset: "chinook", queryId: "customer_invoices", params: {} });

    assert.equal(invalid.effect, Effect.EFFECT_DENY);
    assert.equal(invalid.requestError, "ERR_PARAMS_INVALID");
    assert.match(invalid.reason, /parameter "customer_id" is required/);
  });

  it("rejects evaluate by tenant identity", async () => {
    const tenantClient = harness.client(await materialFor(harness.tenantCa, "/client/site-1", harness.operatorCa));
    const error = await rejection(callUnary(tenantClient.evaluate.bind(tenantClient), { principal: DEMO_CALLER, tenant: "acme", dataset: "chinook", queryId: "employee_list", params: {} }));
    assert.equal(error.code, status.PERMISSION_DENIED);
  });

  it("watch delivers versions to two watchers", async () => {
    await callUnary(admin.apply.bind(admin), { documentYaml: DEMO_POLICY_YAML, sourceName: "demo.yaml" });
    const first = new PolicySnapshotCache(workload, silentLogger());
    const second = new PolicySnapshotCache(harness.client(await materialFor(harness.operatorCa, "/hub/2", harness.operatorCa)), silentLogger());
    try {
      first.start();
      second.start();
      assert.equal((await nextVersion(first, 1)).version, 1);
      assert.equal((await nextVersion(second, 1)).version, 1);

      const updates = [nextVersion(first, 2), nextVersion(second, 2)];
      await callUnary(admin.apply.bind(admin), { documentYaml: toYaml(baseDocument()), sourceName: "base.yaml" });
      const [firstPolicy, secondPolicy] = await Promise.all(updates);
      assert.equal(firstPolicy.version, 2);
      assert.equal(secondPolicy.version, 2);
      assert.ok(firstPolicy.queries.has("shop\u0000orders"));
      assert.equal(first.ageMs(), 0);
    } finally {
      first.stop();
      second.stop();
    }
  });

  it("snapshot age grows after disconnect", async () => {
    await callUnary(admin.apply.bind(admin), { documentYaml: DEMO_POLICY_YAML, sourceName: "demo.yaml" });
    let nowMs = 1_000_000;
    const cache = new PolicySnapshotCache(workload, silentLogger(), { nowMs: () => nowMs, initialBackoffMs: 50, maxBackoffMs: 100 });
    try {
      assert.equal(cache.ageMs(), Number.POSITIVE_INFINITY);
      cache.start();
      await nextVersion(cache, 1);
      await harness.running.server.close(100);
      while (cache.watchState === "live") await new Promise((resolve) => setTimeout(resolve, 20));
      nowMs += 5_000;
      assert.equal(cache.ageMs(), 5_000);
      assert.equal(cache.current()?.version, 1);
    } finally {
      cache.stop();
    }
  });

  it("apply command prints the version", async () => {
    const lines: string[] = [];
    const result = await applyPolicyFile(DEMO_POLICY_PATH, admin, { print: (line) => lines.push(line) });
    assert.equal(result.version, 1);
    assert.match(lines.join("\n"), /applied demo\.yaml as policy version 1/);
  });

  it("apply command validates before dialing", async () => {
    const file = join(harness.dir, "bad.yaml");
    writeFileSync(file, "version: 1\noperator_trust_domain: operator.example\ncatalog: {}\nrules:\n  - name: r\n");
    // A port that was just freed has no server, so a network call would fail with UNAVAILABLE instead.
    const offline = harness.client(await materialFor(harness.operatorCa, "/admin/alice", harness.operatorCa), `127.0.0.1:${await freePort()}`);
    const err = await applyPolicyFile(file, offline, { print: () => undefined }).then(
      () => assert.fail("expected the invalid document to be rejected"),
      (rejected: unknown) => rejected,
    );

    // A local EwiiError shows that no dial happened, because a failed dial rejects with UNAVAILABLE and call metadata.
    assert.ok(isEwiiError(err), `expected a local EwiiError, got ${String(err)}`);
    assert.equal(errorCodeOf(err), "ERR_POLICY_INVALID");
    assert.equal((err as { metadata?: unknown }).metadata, undefined);
  });
});
