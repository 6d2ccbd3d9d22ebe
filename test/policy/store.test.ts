import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../services/core/log.js";
import { PolicyService } from "../../services/policy/service.js";
import { PolicyStore } from "../../services/policy/store.js";
import { DEMO_POLICY_YAML, baseDocument, toYaml } from "./helpers.js";

const ADMIN = "spiffe://operator.example/admin/alice";

describe("policy store", () => {
  let dir: string;
  let store: PolicyStore;
  const appliedAt = new Date("2026-03-01T10:00:00Z");

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "ewii-policy-store-"));
    store = PolicyStore.open(join(dir, "policy.db"), { now: () => appliedAt });
  });

  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts empty", () => {
    assert.equal(store.current(), undefined);
    assert.equal(store.currentPolicy(), undefined);
  });

  it("numbers versions from 1", () => {
    assert.equal(store.apply(DEMO_POLICY_YAML, "demo.yaml", ADMIN).record.version, 1);
    assert.equal(store.apply(toYaml(baseDocument()), "base.yaml", ADMIN).record.version, 2);
    assert.equal(store.current()?.version, 2);
  });

  it("records who and when", () => {
    const { record } = store.apply(DEMO_POLICY_YAML, "demo.yaml", ADMIN);
    const stored = store.get(record.version);
    assert.equal(stored?.appliedBy, ADMIN);
    assert.equal(stored?.appliedAt.toISOString(), appliedAt.toISOString());
    assert.equal(stored?.sourceName, "demo.yaml");
  });

  it("keeps every version", () => {
    store.apply(DEMO_POLICY_YAML, "demo.yaml", ADMIN);
    store.apply(toYaml(baseDocument()), "base.yaml", ADMIN);
    assert.deepEqual(store.list().map((record) => record.sourceName), ["demo.yaml", "base.yaml"]);
  });

  it("bad document keeps previous version", () => {
    store.apply(DEMO_POLICY_YAML, "demo.yaml", ADMIN);
    const bad = baseDocument();
    bad.rules[0].datasets = ["crm"];
    assert.throws(() => store.apply(toYaml(bad), "bad.yaml", ADMIN), { code: "ERR_POLICY_INVALID" });
    assert.equal(store.current()?.version, 1);
    assert.equal(store.list().length, 1);
  });

  it("survives reopen", () => {
    const { record } = store.apply(DEMO_POLICY_YAML, "demo.yaml", ADMIN);
    store.close();
    store = PolicyStore.open(join(dir, "policy.db"));
    assert.equal(store.current()?.documentSha256, record.documentSha256);
    assert.equal(store.currentPolicy()?.version, 1);
  });

  it("compiles stored version", () => {
    store.apply(DEMO_POLICY_YAML, "demo.yaml", ADMIN);
    assert.equal(store.currentPolicy()?.queries.size, 6);
  });
});

describe("policy service core", () => {
  let dir: string;
  let store: PolicyStore;
  let service: PolicyService;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "ewii-policy-service-"));
    store = PolicyStore.open(join(dir, "policy.db"));
    service = new PolicyService({ store, operatorTrustDomain: "operator.example", logger: silentLogger() });
  });

  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("denies before first apply", () => {
    const decision = service.evaluate({ principal: "spiffe://operator.example/caller/x", tenant: "acme", dataset: "chinook", queryId: "revenue_by_country", params: {} });
    assert.equal(decision.effect, "deny");
    assert.equal(decision.policyVersion, 0);
  });

  it("rejects other trust domain", () => {
    const doc = baseDocument();
    doc.operator_trust_domain = "other.example";
    doc.rules[0].principals = ["spiffe://other.example/caller/"];
    assert.throws(() => service.apply(toYaml(doc), "other.yaml", ADMIN), /operator_trust_domain: "other\.example" is not this service's trust domain "operator\.example"/);
    assert.equal(store.current(), undefined);
  });

  it("notifies subscribers on apply", () => {
    const seen: number[] = [];
    service.subscribe((state) => seen.push(state.record.version));
    service.apply(DEMO_POLICY_YAML, "demo.yaml", ADMIN);
    service.apply(DEMO_POLICY_YAML, "demo.yaml", ADMIN);
    assert.deepEqual(seen, [1, 2]);
  });

  it("loads current version at start", () => {
    service.apply(DEMO_POLICY_YAML, "demo.yaml", ADMIN);
    const restarted = new PolicyService({ store, operatorTrustDomain: "operator.example", logger: silentLogger() });
    assert.equal(restarted.current()?.record.version, 1);
  });
});
