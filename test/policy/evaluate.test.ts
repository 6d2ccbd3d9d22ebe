import assert from "node:assert/strict";
import { compilePolicy, lookupQuery, type CompiledPolicy } from "../../services/policy/compile.js";
import { parsePolicy } from "../../services/policy/document.js";
import { evaluate, type EvaluationRequest } from "../../services/policy/evaluate.js";
import { RateLimiter } from "../../services/policy/rate-limit.js";
import { sqlSha256 } from "../../services/policy/sql-hash.js";
import { DEMO_CALLER, DEMO_POLICY_YAML, baseDocument, int, real, text, toYaml, type DocumentInput } from "./helpers.js";

type Doc = DocumentInput;

const NOON_WEDNESDAY = new Date("2026-01-07T12:00:00Z");

function compile(edit: (doc: Doc) => void = () => undefined, version = 1): CompiledPolicy {
  const doc = baseDocument();
  edit(doc);
  return compilePolicy(parsePolicy(toYaml(doc), "policy.yaml"), version);
}

function request(overrides: Partial<EvaluationRequest> = {}): EvaluationRequest {
  return { principal: "spiffe://operator.example/caller/reports", tenant: "acme", dataset: "shop", queryId: "orders", params: { customer_id: int(7) }, ...overrides };
}

describe("policy evaluate", () => {
  it("allows matching rule", () => {
    const decision = evaluate(compile(), request(), NOON_WEDNESDAY);
    assert.equal(decision.effect, "allow");
    assert.equal(decision.rule, "allow-callers");
    assert.equal(decision.policyVersion, 1);
    assert.equal(decision.maxRows, 50);
  });

  it("names the policy version", () => {
    assert.equal(evaluate(compile(undefined, 42), request(), NOON_WEDNESDAY).policyVersion, 42);
  });

  it("deny overrides allow", () => {
    const policy = compile((doc) => doc.rules.push({ name: "deny-orders", effect: "deny", principals: ["spiffe://operator.example/caller/reports"], tenants: ["*"], datasets: ["shop"], queries: ["orders"] }));
    const decision = evaluate(policy, request(), NOON_WEDNESDAY);
    assert.equal(decision.effect, "deny");
    assert.equal(decision.rule, "deny-orders");
    assert.equal(decision.maxRows, 0);
  });

  it("deny listed first still wins", () => {
    const policy = compile((doc) => doc.rules.unshift({ name: "deny-all", effect: "deny", principals: ["spiffe://operator.example/"], tenants: ["acme"], datasets: ["*"], queries: ["*"] }));
    assert.equal(evaluate(policy, request(), NOON_WEDNESDAY).rule, "deny-all");
  });

  it("default deny for other tenant", () => {
    const decision = evaluate(compile(), request({ tenant: "globex" }), NOON_WEDNESDAY);
    assert.equal(decision.effect, "deny");
    assert.equal(decision.rule, "default-deny");
    assert.match(decision.reason, /no allow rule covers/);
  });

  it("default deny for other principal", () => {
    const decision = evaluate(compile(), request({ principal: "spiffe://operator.example/service/billing" }), NOON_WEDNESDAY);
    assert.equal(decision.rule, "default-deny");
  });

  it("default deny with no rules", () => {
    const decision = evaluate(compile((doc) => (doc.rules = [])), request(), NOON_WEDNESDAY);
    assert.equal(decision.effect, "deny");
    assert.equal(decision.rule, "default-deny");
  });

  it("denies unknown query", () => {
    const decision = evaluate(compile(), request({ queryId: "refunds" }), NOON_WEDNESDAY);
    assert.equal(decision.effect, "deny");
    assert.match(decision.reason, /query "refunds" is not in the catalog of dataset "shop"/);
    assert.equal(decision.requestError, "ERR_CATALOG_QUERY_UNKNOWN");
  });

  it("denies unknown dataset", () => {
    const decision = evaluate(compile(), request({ dataset: "crm" }), NOON_WEDNESDAY);
    assert.equal(decision.effect, "deny");
    assert.equal(decision.requestError, "ERR_CATALOG_QUERY_UNKNOWN");
  });

  it("rule denial is no request error", () => {
    const decision = evaluate(compile(), request({ tenant: "globex" }), NOON_WEDNESDAY);
    assert.equal(decision.requestError, undefined);
  });

  it("malformed tenant is a request error", () => {
    const decision = evaluate(compile(), request({ tenant: "Not A Label" }), NOON_WEDNESDAY);
    assert.equal(decision.effect, "deny");
    assert.equal(decision.requestError, "ERR_REQUEST_INVALID");
  });

  describe("principal prefix", () => {
    const cases: Array<[string, "allow" | "deny"]> = [
      ["spiffe://operator.example/caller/reports", "allow"],
      ["spiffe://operator.example/caller/reports/nightly", "allow"],
      ["spiffe://operator.example/callerx", "deny"],
      ["spiffe://operator.example/callerx/reports", "deny"],
      ["spiffe://operator.example/caller", "deny"],
      ["spiffe://other.example/caller/reports", "deny"],
      ["spiffe://operator.example/caller/../admin", "deny"],
      ["spiffe://operator.example/caller//x", "deny"],
    ];
    for (const [principal, effect] of cases) {
      it(`${effect}s ${principal}`, () => {
        assert.equal(evaluate(compile(), request({ principal }), NOON_WEDNESDAY).effect, effect);
      });
    }

    it("exact ID skips children", () => {
      const policy = compile((doc) => (doc.rules[0].principals = ["spiffe://operator.example/caller/reports"]));
      assert.equal(evaluate(policy, request({ principal: "spiffe://operator.example/caller/reports/x" }), NOON_WEDNESDAY).effect, "deny");
    });
  });

  describe("params", () => {
    it("denies wrong type naming param", () => {
      const decision = evaluate(compile(), request({ params: { customer_id: text("7") } }), NOON_WEDNESDAY);
      assert.equal(decision.effect, "deny");
      assert.equal(decision.reason, 'parameter "customer_id" must be integer, found text');
      assert.equal(decision.requestError, "ERR_PARAMS_INVALID");
    });

    it("denies missing required param", () => {
      const decision = evaluate(compile(), request({ params: {} }), NOON_WEDNESDAY);
      assert.match(decision.reason, /parameter "customer_id" is required/);
    });

    it("denies null required param", () => {
      assert.match(evaluate(compile(), request({ params: { customer_id: { nullValue: true } } }), NOON_WEDNESDAY).reason, /must not be null/);
    });

    it("denies undeclared param", () => {
      assert.match(evaluate(compile(), request({ params: { customer_id: int(7), extra: int(1) } }), NOON_WEDNESDAY).reason, /"extra" is not declared/);
    });

    it("denies value above catalog max", () => {
      const decision = evaluate(compile(), request({ params: { customer_id: int(101) } }), NOON_WEDNESDAY);
      assert.equal(decision.reason, 'parameter "customer_id" is above the maximum 100 of the catalog');
      assert.equal(decision.requestError, "ERR_PARAMS_INVALID");
    });

    it("never quotes the value", () => {
      const decision = evaluate(compile(), request({ queryId: "search", params: { name: text("secret-name"), limit: int(1) } }), NOON_WEDNESDAY);
      assert.equal(decision.effect, "deny");
      assert.ok(!decision.reason.includes("secret-name"));
    });

    it("allows optional param absent", () => {
      assert.equal(evaluate(compile(), request({ queryId: "search", params: { name: text("dune"), limit: int(3) } }), NOON_WEDNESDAY).effect, "allow");
    });

    it("denies value outside enum", () => {
      const decision = evaluate(compile(), request({ queryId: "search", params: { name: text("dune"), limit: int(3), kind: text("game") } }), NOON_WEDNESDAY);
      assert.match(decision.reason, /"kind" is not one of/);
    });

    it("counts code points for max_length", () => {
      assert.equal(evaluate(compile(), request({ queryId: "search", params: { name: text("😀😀😀😀😀"), limit: int(3) } }), NOON_WEDNESDAY).effect, "allow");
    });

    it("denies two value kinds", () => {
      assert.match(evaluate(compile(), request({ params: { customer_id: { intValue: 1n, stringValue: "1" } } }), NOON_WEDNESDAY).reason, /exactly one value kind/);
    });

    it("rule condition max applies", () => {
      const policy = compile((doc) => Object.assign(doc.rules[0], { queries: ["orders"], conditions: { params: { customer_id: { max: 10 } } } }));
      assert.equal(evaluate(policy, request({ params: { customer_id: int(10) } }), NOON_WEDNESDAY).effect, "allow");
      const denied = evaluate(policy, request({ params: { customer_id: int(11) } }), NOON_WEDNESDAY);
      assert.equal(denied.rule, "default-deny");
      assert.match(denied.reason, /above the maximum 10 of the rule "allow-callers"/);
    });

    it("rule condition in applies", () => {
      const policy = compile((doc) => Object.assign(doc.rules[0], { queries: ["orders"], conditions: { params: { customer_id: { in: [1, 2] } } } }));
      assert.equal(evaluate(policy, request({ params: { customer_id: int(2) } }), NOON_WEDNESDAY).effect, "allow");
      assert.equal(evaluate(policy, request({ params: { customer_id: int(3) } }), NOON_WEDNESDAY).effect, "deny");
    });

    it("rule pattern matches whole value", () => {
      const policy = compile((doc) => Object.assign(doc.rules[0], { queries: ["search"], conditions: { params: { name: { pattern: "[a-z]+" } } } }));
      assert.equal(evaluate(policy, request({ queryId: "search", params: { name: text("dune"), limit: int(1) } }), NOON_WEDNESDAY).effect, "allow");
      assert.equal(evaluate(policy, request({ queryId: "search", params: { name: text("dune1"), limit: int(1) } }), NOON_WEDNESDAY).effect, "deny");
    });

    it("deny rule with condition", () => {
      const policy = compile((doc) => doc.rules.push({ name: "deny-vip", effect: "deny", principals: ["spiffe://operator.example/"], tenants: ["*"], datasets: ["shop"], queries: ["orders"], conditions: { params: { customer_id: { equals: 1 } } } }));
      assert.equal(evaluate(policy, request({ params: { customer_id: int(1) } }), NOON_WEDNESDAY).rule, "deny-vip");
      assert.equal(evaluate(policy, request({ params: { customer_id: int(2) } }), NOON_WEDNESDAY).effect, "allow");
    });

    it("real takes an integer", () => {
      const policy = compile((doc) => {
        doc.catalog.shop.queries.totals = { sql: { sqlite: "SELECT * FROM orders WHERE total > :above" }, params: { above: { type: "real", max: 9.5 } } };
      });
      assert.equal(evaluate(policy, request({ queryId: "totals", params: { above: int(9) } }), NOON_WEDNESDAY).effect, "allow");
      assert.equal(evaluate(policy, request({ queryId: "totals", params: { above: real(9.6) } }), NOON_WEDNESDAY).effect, "deny");
    });
  });

  describe("time window", () => {
    const policy = compile((doc) => (doc.rules[0].conditions = { time_window: { days: ["mon", "tue", "wed", "thu", "fri"], start: "08:00", end: "18:00", timezone: "UTC" } }));

    it("allows inside window", () => {
      assert.equal(evaluate(policy, request(), NOON_WEDNESDAY).effect, "allow");
    });

    it("denies after end", () => {
      const decision = evaluate(policy, request(), new Date("2026-01-07T18:00:00Z"));
      assert.equal(decision.effect, "deny");
      assert.match(decision.reason, /time window of rule "allow-callers" .* is closed/);
    });

    it("denies on weekend", () => {
      assert.equal(evaluate(policy, request(), new Date("2026-01-10T12:00:00Z")).effect, "deny");
    });

    it("uses the rule time zone", () => {
      const paris = compile((doc) => (doc.rules[0].conditions = { time_window: { start: "08:00", end: "18:00", timezone: "Europe/Paris" } }));
      // 07:30 UTC is 08:30 in Paris in January (UTC+1).
      assert.equal(evaluate(paris, request(), new Date("2026-01-07T07:30:00Z")).effect, "allow");
      assert.equal(evaluate(paris, request(), new Date("2026-01-07T17:30:00Z")).effect, "deny");
    });

    it("window crosses midnight", () => {
      const night = compile((doc) => (doc.rules[0].conditions = { time_window: { days: ["fri"], start: "22:00", end: "02:00" } }));
      assert.equal(evaluate(night, request(), new Date("2026-01-09T23:00:00Z")).effect, "allow");
      assert.equal(evaluate(night, request(), new Date("2026-01-10T01:00:00Z")).effect, "allow");
      assert.equal(evaluate(night, request(), new Date("2026-01-10T03:00:00Z")).effect, "deny");
      assert.equal(evaluate(night, request(), new Date("2026-01-08T23:00:00Z")).effect, "deny");
    });
  });

  describe("rate limit", () => {
    const policy = compile((doc) => (doc.rules[0].conditions = { rate_limit: { per_minute: 2 } }));

    it("denies past the limit", () => {
      const limiter = new RateLimiter();
      assert.equal(evaluate(policy, request(), NOON_WEDNESDAY, limiter).effect, "allow");
      assert.equal(evaluate(policy, request(), NOON_WEDNESDAY, limiter).effect, "allow");
      const third = evaluate(policy, request(), NOON_WEDNESDAY, limiter);
      assert.equal(third.effect, "deny");
      assert.equal(third.rule, "allow-callers");
      assert.match(third.reason, /rate limit of rule "allow-callers" \(2 per minute per principal\) is exhausted/);
    });

    it("refills over time", () => {
      const limiter = new RateLimiter();
      evaluate(policy, request(), NOON_WEDNESDAY, limiter);
      evaluate(policy, request(), NOON_WEDNESDAY, limiter);
      const later = new Date(NOON_WEDNESDAY.getTime() + 30_000);
      assert.equal(evaluate(policy, request(), later, limiter).effect, "allow");
      assert.equal(evaluate(policy, request(), later, limiter).effect, "deny");
    });

    it("counts each principal apart", () => {
      const limiter = new RateLimiter();
      evaluate(policy, request(), NOON_WEDNESDAY, limiter);
      evaluate(policy, request(), NOON_WEDNESDAY, limiter);
      assert.equal(evaluate(policy, request({ principal: "spiffe://operator.example/caller/other" }), NOON_WEDNESDAY, limiter).effect, "allow");
    });

    it("denied requests take no token", () => {
      const limiter = new RateLimiter();
      for (let i = 0; i < 5; i++) evaluate(policy, request({ params: {} }), NOON_WEDNESDAY, limiter);
      assert.equal(evaluate(policy, request(), NOON_WEDNESDAY, limiter).effect, "allow");
    });

    it("bounds bucket count", () => {
      const limiter = new RateLimiter({ maxBuckets: 10 });
      for (let i = 0; i < 25; i++) limiter.tryTake(`key-${i}`, 5, 0);
      assert.ok(limiter.size <= 10, `size ${limiter.size}`);
    });
  });

  it("rule row cap lowers query cap", () => {
    const policy = compile((doc) => (doc.rules[0].conditions = { max_rows: 20 }));
    assert.equal(evaluate(policy, request(), NOON_WEDNESDAY).maxRows, 20);
  });

  it("query cap bounds rule cap", () => {
    const policy = compile((doc) => (doc.rules[0].conditions = { max_rows: 5000 }));
    assert.equal(evaluate(policy, request(), NOON_WEDNESDAY).maxRows, 50);
  });

  it("first allow in document order decides", () => {
    const policy = compile((doc) => doc.rules.unshift({ name: "allow-reports", effect: "allow", principals: ["spiffe://operator.example/caller/reports"], tenants: ["acme"], datasets: ["shop"], queries: ["orders"], conditions: { max_rows: 3 } }));
    const decision = evaluate(policy, request(), NOON_WEDNESDAY);
    assert.equal(decision.rule, "allow-reports");
    assert.equal(decision.maxRows, 3);
  });

  describe("demo policy", () => {
    const demo = compilePolicy(parsePolicy(DEMO_POLICY_YAML, "demo.yaml"), 1);
    const demoRequest = (queryId: string, params: EvaluationRequest["params"] = {}): EvaluationRequest => ({ principal: DEMO_CALLER, tenant: "acme", dataset: "chinook", queryId, params });

    it("allows revenue_by_country", () => {
      assert.equal(evaluate(demo, demoRequest("revenue_by_country"), NOON_WEDNESDAY).effect, "allow");
    });

    it("denies employee_list", () => {
      assert.equal(evaluate(demo, demoRequest("employee_list"), NOON_WEDNESDAY).rule, "deny-employee-list");
    });

    it("checks customer_id range", () => {
      assert.equal(evaluate(demo, demoRequest("customer_invoices", { customer_id: int(59) }), NOON_WEDNESDAY).effect, "allow");
      assert.equal(evaluate(demo, demoRequest("customer_invoices", { customer_id: int(60) }), NOON_WEDNESDAY).effect, "deny");
    });

    it("caps invoice_lines_all rows", () => {
      assert.equal(evaluate(demo, demoRequest("invoice_lines_all"), NOON_WEDNESDAY).maxRows, 2500);
    });

    it("exposes SQL hashes", () => {
      const query = lookupQuery(demo, "chinook", "revenue_by_country");
      const document = parsePolicy(DEMO_POLICY_YAML, "demo.yaml");
      assert.equal(query?.sqlSha256.sqlite, sqlSha256(document.catalog.chinook.queries.revenue_by_country.sql.sqlite ?? ""));
      assert.equal(query?.sqlSha256.postgres, sqlSha256(document.catalog.chinook.queries.revenue_by_country.sql.postgres ?? ""));
    });
  });
});
