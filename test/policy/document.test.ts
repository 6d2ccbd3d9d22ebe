import assert from "node:assert/strict";
import { EwiiError } from "../../services/core/errors.js";
import { canonicalJson, documentSha256, parsePolicy, parsePolicyJson } from "../../services/policy/document.js";
import { normalizeSql, sqlSha256 } from "../../services/policy/sql-hash.js";
import { DEMO_POLICY_YAML, baseDocument, toYaml, type DocumentInput } from "./helpers.js";

type Doc = DocumentInput;

function parseError(yaml: string): EwiiError {
  try {
    parsePolicy(yaml, "policy.yaml");
  } catch (err: unknown) {
    assert.ok(err instanceof EwiiError, `expected an EwiiError, got ${String(err)}`);
    return err;
  }
  assert.fail("the document was accepted");
}

const badDocuments: Array<{ name: string; edit: (doc: Doc) => void; field: string; fix: RegExp }> = [
  {
    name: "principal outside the trust domain",
    edit: (doc) => (doc.rules[0].principals = ["spiffe://other.example/x"]),
    field: "rules[0].principals[0]",
    fix: /"spiffe:\/\/other\.example\/x" is not in the operator trust domain "operator\.example"; use an ID under spiffe:\/\/operator\.example\//,
  },
  { name: "principal not a SPIFFE ID", edit: (doc) => (doc.rules[0].principals = ["caller"]), field: "rules[0].principals[0]", fix: /is not a SPIFFE ID/ },
  { name: "principal with dot segment", edit: (doc) => (doc.rules[0].principals = ["spiffe://operator.example/caller/../admin"]), field: "rules[0].principals[0]", fix: /invalid path segment "\.\."/ },
  { name: "unknown dataset", edit: (doc) => (doc.rules[0].datasets = ["crm"]), field: "rules[0].datasets[0]", fix: /unknown dataset "crm"; declare it under catalog or use one of "shop"/ },
  { name: "unknown query", edit: (doc) => (doc.rules[0].queries = ["refunds"]), field: "rules[0].queries[0]", fix: /unknown query "refunds"/ },
  {
    name: "condition on undeclared param",
    edit: (doc) => (doc.rules[0].conditions = { params: { region: { equals: "eu" } } }),
    field: "rules[0].conditions.params.region",
    fix: /not declared by "shop\/orders"/,
  },
  {
    name: "duplicate rule name",
    edit: (doc) => doc.rules.push({ ...doc.rules[0] }),
    field: "rules[1].name",
    fix: /duplicate rule name "allow-callers", also used by rules\[0\]/,
  },
  { name: "empty sql", edit: (doc) => (doc.catalog.shop.queries.totals.sql.sqlite = "  \n"), field: "catalog.shop.queries.totals.sql.sqlite", fix: /the SQL text is empty/ },
  { name: "no sql engine", edit: (doc) => (doc.catalog.shop.queries.totals.sql = {}), field: "catalog.shop.queries.totals.sql", fix: /add sql\.sqlite, sql\.postgres or both/ },
  { name: "missing effect", edit: (doc) => delete doc.rules[0].effect, field: "rules[0].effect", fix: /is missing; add it/ },
  { name: "unknown key", edit: (doc) => (doc.rules[0].principal = []), field: "rules[0]", fix: /unknown key "principal"; remove it or correct its spelling/ },
  { name: "wrong version", edit: (doc) => (doc.version = 2), field: "version", fix: /expected one of 1/ },
  { name: "undeclared placeholder", edit: (doc) => (doc.catalog.shop.queries.totals.sql.sqlite = "SELECT * FROM t WHERE id = :id"), field: "catalog.shop.queries.totals.sql.sqlite", fix: /placeholder :id has no declared parameter/ },
  { name: "postgres placeholder undeclared", edit: (doc) => (doc.catalog.shop.queries.orders.sql.postgres = "SELECT :customer_id, :region"), field: "catalog.shop.queries.orders.sql.postgres", fix: /placeholder :region has no declared parameter/ },
  { name: "positional placeholder", edit: (doc) => (doc.catalog.shop.queries.totals.sql.postgres = "SELECT * FROM t WHERE id = $1"), field: "catalog.shop.queries.totals.sql.postgres", fix: /\$1 at offset 27 is not a :name placeholder/ },
  { name: "second statement", edit: (doc) => (doc.catalog.shop.queries.totals.sql.sqlite = "SELECT 1; DELETE FROM t"), field: "catalog.shop.queries.totals.sql.sqlite", fix: /second statement after the semicolon at offset 8; approve one statement per query/ },
  { name: "min above max", edit: (doc) => (doc.catalog.shop.queries.orders.params.customer_id.min = 500), field: "catalog.shop.queries.orders.params.customer_id.min", fix: /min 500 is greater than max 100; swap them/ },
  { name: "enum of wrong type", edit: (doc) => (doc.catalog.shop.queries.search.params.kind.enum = ["book", 3]), field: "catalog.shop.queries.search.params.kind.enum[1]", fix: /3 is not a text value/ },
  { name: "rate limit on deny rule", edit: (doc) => Object.assign(doc.rules[0], { effect: "deny", conditions: { rate_limit: { per_minute: 5 } } }), field: "rules[0].conditions.rate_limit", fix: /applies to allow rules only/ },
  { name: "bad time zone", edit: (doc) => (doc.rules[0].conditions = { time_window: { start: "08:00", end: "18:00", timezone: "Mars/Olympus" } }), field: "rules[0].conditions.time_window.timezone", fix: /unknown time zone "Mars\/Olympus"/ },
  { name: "bad start time", edit: (doc) => (doc.rules[0].conditions = { time_window: { start: "8am", end: "18:00" } }), field: "rules[0].conditions.time_window.start", fix: /use 24-hour "HH:MM"/ },
  { name: "invalid pattern", edit: (doc) => Object.assign(doc.rules[0], { queries: ["search"], conditions: { params: { name: { pattern: "(" } } } }), field: "rules[0].conditions.params.name.pattern", fix: /not a valid JavaScript regular expression/ },
  { name: "reserved rule name", edit: (doc) => (doc.rules[0].name = "default-deny"), field: "rules[0].name", fix: /reserved/ },
  { name: "wildcard mixed with names", edit: (doc) => (doc.rules[0].tenants = ["*", "acme"]), field: "rules[0].tenants", fix: /use "\*" alone/ },
];

describe("policy document", () => {
  it("demo policy parses", () => {
    const document = parsePolicy(DEMO_POLICY_YAML, "demo.yaml");
    assert.deepEqual(Object.keys(document.catalog.chinook.queries).sort(), ["customer_emails", "customer_invoices", "employee_list", "invoice_lines_all", "revenue_by_country", "top_tracks_by_genre"]);
  });

  it("base document parses", () => {
    assert.doesNotThrow(() => parsePolicy(toYaml(baseDocument()), "policy.yaml"));
  });

  for (const bad of badDocuments) {
    it(`rejects ${bad.name}`, () => {
      const doc = baseDocument();
      bad.edit(doc);
      const err = parseError(toYaml(doc));
      assert.equal(err.code, "ERR_POLICY_INVALID");
      assert.ok(err.message.includes(`policy.yaml: ${bad.field}: `), `message does not name the field ${bad.field}: ${err.message}`);
      assert.match(err.message, bad.fix);
    });
  }

  it("rejects invalid YAML", () => {
    const err = parseError("version: 1\ncatalog: [\n");
    assert.match(err.message, /^policy\.yaml: not valid YAML: /);
  });

  it("rejects duplicate YAML keys", () => {
    const err = parseError("version: 1\nversion: 1\n");
    assert.match(err.message, /not valid YAML/);
  });

  it("rejects a list document", () => {
    const err = parseError("- 1\n");
    assert.match(err.message, /must be a mapping/);
  });

  it("lists every problem", () => {
    const doc = baseDocument();
    doc.rules[0].datasets = ["crm"];
    doc.rules[0].principals = ["spiffe://other.example/x"];
    const err = parseError(toYaml(doc));
    assert.match(err.message, /rules\[0\]\.principals\[0\]/);
    assert.match(err.message, /rules\[0\]\.datasets\[0\]/);
  });

  it("canonical JSON ignores layout", () => {
    const doc = baseDocument();
    const reordered = { rules: doc.rules, catalog: doc.catalog, operator_trust_domain: doc.operator_trust_domain, version: 1 };
    const a = parsePolicy(toYaml(doc), "a.yaml");
    const b = parsePolicy(toYaml(reordered), "b.yaml");
    assert.equal(canonicalJson(a), canonicalJson(b));
    assert.equal(documentSha256(a), documentSha256(b));
    assert.match(documentSha256(a), /^[0-9a-f]{64}$/);
  });

  it("canonical JSON round-trips", () => {
    const document = parsePolicy(DEMO_POLICY_YAML, "demo.yaml");
    const again = parsePolicyJson(canonicalJson(document), "snapshot");
    assert.equal(canonicalJson(again), canonicalJson(document));
  });

});

describe("sqlSha256", () => {
  it("ignores line endings", () => {
    assert.equal(sqlSha256("SELECT 1\r\nFROM t\r\n"), sqlSha256("SELECT 1\nFROM t"));
  });

  it("ignores trailing spaces", () => {
    assert.equal(sqlSha256("SELECT 1   \nFROM t\t\n\n"), sqlSha256("SELECT 1\nFROM t"));
  });

  it("keeps indentation", () => {
    assert.notEqual(sqlSha256("SELECT 1\n  FROM t"), sqlSha256("SELECT 1\nFROM t"));
  });

  it("keeps letter case", () => {
    assert.notEqual(sqlSha256("select 1"), sqlSha256("SELECT 1"));
  });

  it("matches a known digest", () => {
    // SHA-256 of the three bytes "abc" (FIPS 180-2, appendix B.1).
    assert.equal(sqlSha256("abc\n"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("normalizes CR alone", () => {
    assert.equal(normalizeSql("a\rb"), "a\nb");
  });
});
