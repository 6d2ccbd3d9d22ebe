import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../../services/core/log.js";
import { startDevStack, type DevStack } from "../../services/dev/stack.js";
import { makeTempDir, parseJson, runEwii, type EwiiResult } from "./helpers.js";

interface TenantJson {
  name: string;
  trustDomain: string;
  enabled: boolean;
  rolloverPhase: string;
  caFingerprints: string[];
}

interface SvidJson {
  serial: string;
  spiffeId: string;
  tenant: string;
  revoked: boolean;
}

interface RevocationJson {
  sequence: number;
  trustDomain: string;
  target: Record<string, string>;
}

function assertFailure(result: EwiiResult, code: string, mentions: string[]): void {
  const lines = result.stderr.trim().split("\n");
  assert.notEqual(result.code, 0, `expected a non-zero exit, stdout:\n${result.stdout}`);
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${result.stderr}`);
  assert.ok(lines[0].startsWith(`ewii: ${code}: `), lines[0]);
  for (const text of mentions) assert.ok(lines[0].includes(text), `expected "${text}" in: ${lines[0]}`);
}

function modeOf(path: string): number {
  return statSync(path).mode & 0o777;
}

describe("ewii admin commands", function () {
  this.timeout(120_000);
  let dir: ReturnType<typeof makeTempDir>;
  let stack: DevStack;
  let ewii: (...args: string[]) => Promise<EwiiResult>;

  before(async () => {
    dir = makeTempDir("cli");
    stack = await startDevStack({ home: join(dir.path, "home"), basePort: 0, logger: silentLogger() });
    ewii = (...args) => runEwii(["--home", stack.home, ...args]);
  });

  after(async () => {
    await stack?.close();
    dir?.remove();
  });

  describe("tenant", () => {
    it("create prints a table", async () => {
      const result = await ewii("tenant", "create", "globex");

      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /globex\s+│ globex\.tenants\.operator\.example/);
    });

    it("list --json returns every tenant", async () => {
      const tenants = parseJson<TenantJson[]>(await ewii("--json", "tenant", "list"));

      assert.deepEqual(tenants.map((tenant) => tenant.name).sort(), ["acme", "globex"]);
      assert.equal(tenants[0].caFingerprints[0].length, 64);
    });

    it("get --json returns one tenant", async () => {
      const tenant = parseJson<TenantJson>(await ewii("--json", "tenant", "get", "acme"));

      assert.equal(tenant.trustDomain, "acme.tenants.operator.example");
      assert.equal(tenant.enabled, true);
    });

    it("get of unknown tenant fails", async () => {
      assertFailure(await ewii("tenant", "get", "nope"), "ERR_TENANT_NOT_FOUND", ['"nope"', "ewii tenant list"]);
    });

    it("disable --json revokes the tenant", async () => {
      await ewii("tenant", "create", "initech");

      const result = parseJson<{ tenant: TenantJson; revocation: RevocationJson }>(await ewii("--json", "tenant", "disable", "initech"));

      assert.equal(result.tenant.enabled, false);
      assert.equal(typeof result.revocation.sequence, "number");
      assert.deepEqual(result.revocation.target, { tenant: "initech" });
    });
  });

  describe("token and enroll", () => {
    it("enroll writes private files", async () => {
      const token = parseJson<{ token: string; spiffeId: string; expiresAt: string }>(await ewii("--json", "token", "create", "--tenant", "globex", "--path", "/client/hq"));
      const identity = join(dir.path, "globex-hq");

      const result = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", token.token, "--dir", identity]);

      assert.equal(result.code, 0, result.stderr);
      assert.equal(token.spiffeId, "spiffe://globex.tenants.operator.example/client/hq");
      assert.ok(result.stdout.includes(token.spiffeId), result.stdout);
      assert.equal(modeOf(identity), 0o700);
      for (const file of ["svid.pem", "key.pem", "bundle.pem", "tenant-bundle.pem"]) {
        assert.equal(modeOf(join(identity, file)), 0o600, file);
      }
    });

    it("used token is rejected", async () => {
      const token = parseJson<{ token: string }>(await ewii("--json", "token", "create", "--tenant", "globex", "--path", "/client/used"));
      const first = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", token.token, "--dir", join(dir.path, "used-1")]);

      const second = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", token.token, "--dir", join(dir.path, "used-2")]);

      assert.equal(first.code, 0, first.stderr);
      assertFailure(second, "ERR_TOKEN_USED", ["single use", "new one"]);
      assert.equal(existsSync(join(dir.path, "used-2", "key.pem")), false);
    });

    it("expired token is rejected", async () => {
      const token = parseJson<{ token: string }>(await ewii("--json", "token", "create", "--tenant", "globex", "--path", "/client/late", "--ttl", "1"));
      await new Promise((done) => setTimeout(done, 1500));

      const result = await runEwii(["client", "enroll", "--ca", stack.endpoints.ca, "--token", token.token, "--dir", join(dir.path, "late")]);

      assertFailure(result, "ERR_TOKEN_EXPIRED", ["expired"]);
    });

    it("token for unknown tenant fails", async () => {
      assertFailure(await ewii("token", "create", "--tenant", "nope", "--path", "/client/a"), "ERR_TENANT_NOT_FOUND", ['"nope"']);
    });
  });

  describe("svid and revoke", () => {
    it("svid list --json shows issued SVIDs", async () => {
      const svids = parseJson<SvidJson[]>(await ewii("--json", "svid", "list", "--tenant", "globex"));

      assert.ok(svids.some((svid) => svid.spiffeId === "spiffe://globex.tenants.operator.example/client/hq"));
      assert.ok(svids.every((svid) => /^[0-9a-f]+$/.test(svid.serial)));
    });

    it("revoke --serial revokes one SVID", async () => {
      const svids = parseJson<SvidJson[]>(await ewii("--json", "svid", "list", "--tenant", "globex"));
      const target = svids.find((svid) => svid.spiffeId.endsWith("/client/used"))!;

      const result = parseJson<{ revocation: RevocationJson }>(await ewii("--json", "revoke", "--serial", target.serial, "--reason", "test"));
      const after = parseJson<SvidJson[]>(await ewii("--json", "svid", "list", "--tenant", "globex"));

      assert.deepEqual(result.revocation.target, { serial: target.serial });
      assert.equal(after.find((svid) => svid.serial === target.serial)?.revoked, true);
    });

    it("revoke --spiffe-id prints the revocation", async () => {
      const result = await ewii("revoke", "--spiffe-id", "spiffe://globex.tenants.operator.example/client/late");

      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^sequence\s+\d+$/m);
    });

    it("revoke --prefix covers a path", async () => {
      const result = parseJson<{ revocation: RevocationJson }>(await ewii("--json", "revoke", "--prefix", "spiffe://globex.tenants.operator.example/client/site"));

      assert.equal(result.revocation.trustDomain, "globex.tenants.operator.example");
    });

    it("revoke --tenant covers a tenant", async () => {
      await ewii("tenant", "create", "umbrella");

      const result = parseJson<{ revocation: RevocationJson }>(await ewii("--json", "revoke", "--tenant", "umbrella"));

      assert.deepEqual(result.revocation.target, { tenant: "umbrella" });
    });

    it("revoke without target is a usage error", async () => {
      const result = await ewii("revoke");

      assertFailure(result, "ERR_USAGE", ["none was given"]);
      assert.equal(result.code, 2);
    });

    it("revoke with two targets is a usage error", async () => {
      const result = await ewii("revoke", "--serial", "01", "--tenant", "globex");

      assertFailure(result, "ERR_USAGE", ["--serial and --tenant"]);
      assert.equal(result.code, 2);
    });
  });

  describe("bundle, rollover and crl", () => {
    it("bundle show --format jwks", async () => {
      const jwks = parseJson<{ keys: { kty: string; crv: string; use: string }[] }>(await ewii("bundle", "show", "acme.tenants.operator.example", "--format", "jwks"));

      assert.equal(jwks.keys[0].kty, "EC");
      assert.equal(jwks.keys[0].crv, "P-256");
    });

    it("bundle show --format pem", async () => {
      const result = await ewii("bundle", "show", "operator.example", "--format", "pem");

      assert.equal(result.code, 0, result.stderr);
      assert.ok(result.stdout.startsWith("-----BEGIN CERTIFICATE-----"), result.stdout);
    });

    it("bundle show of unknown trust domain fails", async () => {
      assertFailure(await ewii("bundle", "show", "nope.example"), "ERR_TRUST_DOMAIN_UNKNOWN", ['"nope.example"']);
    });

    it("bundle show with bad format is a usage error", async () => {
      assertFailure(await ewii("bundle", "show", "operator.example", "--format", "der"), "ERR_USAGE", ['"der"']);
    });

    it("rollover walks prepare, activate, retire", async () => {
      await ewii("tenant", "create", "hooli");

      const prepared = parseJson<TenantJson>(await ewii("--json", "rollover", "prepare", "hooli"));
      const activated = parseJson<TenantJson>(await ewii("--json", "rollover", "activate", "hooli"));
      const retired = parseJson<TenantJson>(await ewii("--json", "rollover", "retire", "hooli", "--force"));

      assert.equal(prepared.caFingerprints.length, 2);
      assert.notEqual(prepared.rolloverPhase, activated.rolloverPhase);
      assert.equal(retired.caFingerprints.length, 1);
      assert.equal(retired.caFingerprints[0], activated.caFingerprints[0]);
    });

    it("crl writes a DER CRL openssl reads", async () => {
      const file = join(dir.path, "globex.crl");

      const result = await ewii("crl", "globex", "-o", file);
      const text = execFileSync("openssl", ["crl", "-inform", "DER", "-noout", "-text", "-in", file], { encoding: "utf8" });

      assert.equal(result.code, 0, result.stderr);
      assert.match(text, /Issuer: CN = Ewii CA globex\.tenants\.operator\.example/);
      assert.match(text, /Revoked Certificates:/);
    });
  });

  describe("query, clients, audit and policy", () => {
    it("query --json returns rows and summary", async () => {
      const result = parseJson<{ columns: string[]; rows: unknown[][]; summary: { rowCount: number; auditSequence: number; policyVersion: number } }>(
        await ewii("--json", "query", "--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "top_tracks_by_genre", "genre=Jazz", "limit=2"),
      );

      assert.deepEqual(result.columns, ["track_id", "track", "artist", "units_sold"]);
      assert.equal(result.rows.length, 2);
      assert.equal(typeof result.rows[0][0], "number");
      assert.equal(result.summary.rowCount, 2);
      assert.equal(typeof result.summary.auditSequence, "number");
    });

    it("query denied by policy fails", async () => {
      const result = await ewii("query", "--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "employee_list");

      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /deny-employee-list/);
    });

    it("clients --json lists the demo client", async () => {
      const clients = parseJson<{ spiffeId: string; tenant: string; relayIds: string[] }[]>(await ewii("--json", "clients"));

      assert.equal(clients[0].spiffeId, stack.clientSpiffeId);
      assert.deepEqual(clients[0].relayIds, ["relay-1"]);
    });

    it("audit query --json prints one record a line", async () => {
      const result = await ewii("--json", "audit", "query", "--tenant", "acme");
      const records = result.stdout.trim().split("\n").map((line) => JSON.parse(line) as { sequence: number; event: string; previousHash: string });

      assert.ok(records.length >= 2, result.stdout);
      assert.equal(typeof records[0].sequence, "number");
      assert.match(records[0].previousHash, /^[0-9a-f]{64}$/);
    });

    it("audit verify reports OK", async () => {
      const result = await ewii("audit", "verify");

      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^audit log OK: \d+ entries checked/);
    });

    it("policy show --json parses the document", async () => {
      const snapshot = parseJson<{ version: number; appliedBy: string; document: { rules: unknown[] }; documentJson?: string }>(await ewii("--json", "policy", "show"));

      assert.equal(snapshot.version, 1);
      assert.equal(snapshot.appliedBy, "spiffe://operator.example/admin/admin");
      assert.ok(snapshot.document.rules.length > 0);
      assert.equal(snapshot.documentJson, undefined);
    });
  });

  describe("setup errors", () => {
    it("home without endpoints fails", async () => {
      const empty = join(dir.path, "empty-home");

      assertFailure(await runEwii(["--home", empty, "tenant", "list"]), "ERR_ENDPOINTS_MISSING", [empty, "--home"]);
    });

    it("EWII_HOME without endpoints fails", async () => {
      const empty = join(dir.path, "empty-env-home");

      assertFailure(await runEwii(["tenant", "list"], { env: { EWII_HOME: empty } }), "ERR_ENDPOINTS_MISSING", [empty]);
    });

    it("missing credentials fail", async () => {
      const missing = join(dir.path, "no-credentials");

      assertFailure(await ewii("--credentials", missing, "tenant", "list"), "ERR_CREDENTIALS_MISSING", [missing, "ewii init"]);
    });

    it("unknown command exits 2", async () => {
      const result = await ewii("tenant", "frob");

      assert.equal(result.code, 2);
      assert.match(result.stderr, /unknown command 'frob'/);
    });

    it("bad --timeout is a usage error", async () => {
      const result = await ewii("query", "--tenant", "acme", "--client", "/client/site-1", "--dataset", "chinook", "q", "--timeout", "soon");

      assertFailure(result, "ERR_USAGE", ['"soon"']);
      assert.equal(result.code, 2);
    });

    it("caller credentials are denied admin calls", async () => {
      const result = await ewii("--credentials", join(stack.home, "credentials", "reports"), "tenant", "list");

      assert.notEqual(result.code, 0);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, /caller\/reports/);
    });
  });
});
