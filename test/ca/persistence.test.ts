import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { callUnary } from "../../services/core/grpc/index.js";
import { silentLogger } from "../../services/core/log.js";
import { credentialPaths, initOperator, Kek, loadKek, startCaService } from "../../services/ca/index.js";
import { CaFixture, codeOf, OPERATOR_TD, rejection } from "./fixture.js";

describe("ca persistence", () => {
  let ca: CaFixture;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
  });

  afterEach(async () => {
    await ca.dispose();
  });

  it("keeps tenants, tokens and revocations on restart", async () => {
    await ca.createTenant("acme");
    const revokedToken = await ca.token("acme", "/client/a");
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { tenant: "acme" }, reason: "before restart" });
    ca.clock.advance(1000);
    const token = await ca.token("acme", "/client/a");
    await ca.stop();
    await ca.start();

    const again = ca.admin();
    const tenants = await callUnary(again.listTenants.bind(again), {});
    const revocations = await callUnary(again.listRevocations.bind(again), { sinceSequence: 0n, limit: 0 });
    const workload = await ca.enroll(token);
    const revokedError = await rejection(ca.enroll(revokedToken));
    assert.deepEqual(tenants.tenants.map((tenant) => tenant.name), ["acme"]);
    assert.equal(revocations.revocations[0].reason, "before restart");
    assert.equal(workload.spiffeId, `spiffe://acme.tenants.${OPERATOR_TD}/client/a`);
    assert.equal(codeOf(revokedError), "ERR_TOKEN_REVOKED");
  });

  it("rejects a wrong KEK at startup", async () => {
    await ca.stop();
    const err = await rejection(
      startCaService({ listen: "127.0.0.1:0", data_dir: ca.dataDir, svid_ttl_seconds: 86_400, token_ttl_seconds: 900, log_level: "info" }, {
        logger: silentLogger(),
        kek: new Kek(randomBytes(32)),
      }),
    );
    assert.equal(codeOf(err), "ERR_KEK_WRONG");
    assert.match((err as Error).message, /use the KEK it was created with/);
  });

  it("rejects a missing KEK at startup", async () => {
    await ca.stop();
    const err = await rejection(
      startCaService({ listen: "127.0.0.1:0", data_dir: ca.dataDir, svid_ttl_seconds: 86_400, token_ttl_seconds: 900, log_level: "info" }, {
        logger: silentLogger(),
        env: {},
      }),
    );
    assert.equal(codeOf(err), "ERR_KEK_MISSING");
    assert.match((err as Error).message, /kek_file.*EWII_KEK/);
  });

  it("rejects a second init", () => {
    assert.throws(
      () => initOperator({ dataDir: ca.dataDir, operatorTrustDomain: OPERATOR_TD, kek: ca.kek(), services: [], admins: [], callers: [] }),
      (err: unknown) => codeOf(err) === "ERR_ALREADY_INITIALIZED",
    );
  });

  it("writes credential files with mode 0600", () => {
    const paths = credentialPaths(ca.dataDir, "alice");
    for (const file of [paths.svid, paths.key, paths.bundle]) assert.equal(statSync(file).mode & 0o777, 0o600, file);
    assert.equal(statSync(paths.dir).mode & 0o777, 0o700);
  });
});

describe("ca kek", () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "ewii-kek-test-"));
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("rejects a group-readable KEK file", () => {
    const file = join(dir, "kek");
    writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o640 });
    assert.throws(() => loadKek({ kekFile: file, env: {} }), (err: unknown) => codeOf(err) === "ERR_KEK_FILE_PERMISSIONS");
  });

  it("reads hex, base64 and raw KEK files", () => {
    const key = randomBytes(32);
    for (const content of [key.toString("hex"), key.toString("base64"), key]) {
      const file = join(dir, "kek");
      writeFileSync(file, content, { mode: 0o600 });
      const sealed = new Kek(Buffer.from(key)).sealCaKey("ca-1", Buffer.from("secret"));
      assert.equal(loadKek({ kekFile: file, env: {} }).openCaKey("ca-1", sealed).toString(), "secret");
    }
  });

  it("binds a sealed key to its CA id", () => {
    const kek = new Kek(randomBytes(32));
    const sealed = kek.sealCaKey("ca-1", Buffer.from("secret"));
    assert.throws(() => kek.openCaKey("ca-2", sealed), (err: unknown) => codeOf(err) === "ERR_KEK_WRONG");
  });

  it("rejects a short EWII_KEK", () => {
    assert.throws(() => loadKek({ env: { EWII_KEK: "abcd" } }), (err: unknown) => codeOf(err) === "ERR_KEK_INVALID");
  });
});
