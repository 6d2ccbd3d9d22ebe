import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { errorCodeOf } from "../../services/core/errors.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { createCsr, generateKeyPair, SpiffeId } from "../../services/core/identity/index.js";
import { CaFixture, OPERATOR_TD, rejection } from "./fixture.js";

describe("ca enroll", () => {
  let ca: CaFixture;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
    await ca.createTenant("beta");
  });

  afterEach(async () => {
    await ca.dispose();
  });

  it("issues the token's SPIFFE ID", async () => {
    const workload = await ca.enroll(await ca.token("acme", "/client/site-1"));
    assert.equal(workload.spiffeId, `spiffe://acme.tenants.${OPERATOR_TD}/client/site-1`);
  });

  it("beta token never yields an acme ID", async () => {
    const workload = await ca.enroll(await ca.token("beta", "/client/site-1"));
    assert.equal(SpiffeId.parse(workload.spiffeId).trustDomain, `beta.tenants.${OPERATOR_TD}`);
  });

  it("rejects a reused token", async () => {
    const token = await ca.token("acme", "/client/a");
    await ca.enroll(token);
    const err = await rejection(ca.enroll(token));
    assert.equal(errorCodeOf(err), "ERR_TOKEN_USED");
  });

  it("rejects an expired token", async () => {
    const token = await ca.token("acme", "/client/a");
    ca.clock.advance(16 * 60 * 1000);
    const err = await rejection(ca.enroll(token));
    assert.equal(errorCodeOf(err), "ERR_TOKEN_EXPIRED");
  });

  it("rejects an unknown token", async () => {
    const token = await ca.token("acme", "/client/a");
    const parts = token.split(".");
    parts[2] = Buffer.alloc(32, 7).toString("base64url");
    const err = await rejection(ca.enroll(parts.join(".")));
    assert.equal(errorCodeOf(err), "ERR_TOKEN_UNKNOWN");
  });

  it("rejects a token of another CA", async () => {
    const token = await ca.token("acme", "/client/a");
    const parts = token.split(".");
    parts[3] = "0".repeat(64);
    const err = await rejection(ca.enroll(parts.join(".")));
    assert.equal(errorCodeOf(err), "ERR_TOKEN_UNKNOWN");
  });

  it("rejects a malformed token", async () => {
    const err = await rejection(ca.enroll("ewii1.not-a-token"));
    assert.equal(errorCodeOf(err), "ERR_TOKEN_MALFORMED");
  });

  it("rejects a token of a disabled tenant", async () => {
    const token = await ca.token("acme", "/client/a");
    const admin = ca.admin();
    await callUnary(admin.disableTenant.bind(admin), { name: "acme" });
    const err = await rejection(ca.enroll(token));
    assert.equal(errorCodeOf(err), "ERR_TENANT_DISABLED");
  });

  it("rejects a tampered CSR", async () => {
    const token = await ca.token("acme", "/client/a");
    const csr = createCsr(generateKeyPair());
    csr[csr.length - 5] ^= 0x01;
    const anonymous = ca.client();
    const err = await rejection(callUnary(anonymous.enroll.bind(anonymous), { joinToken: token, csrDer: csr }));
    assert.equal((err as { code?: number }).code, status.INVALID_ARGUMENT);
    assert.match(errorCodeOf(err) ?? "", /^ERR_CSR_/);
  });

  it("keeps the token after a bad CSR", async () => {
    const token = await ca.token("acme", "/client/a");
    const anonymous = ca.client();
    await rejection(callUnary(anonymous.enroll.bind(anonymous), { joinToken: token, csrDer: Buffer.from([0x30, 0x00]) }));
    const workload = await ca.enroll(token);
    assert.equal(workload.spiffeId, `spiffe://acme.tenants.${OPERATOR_TD}/client/a`);
  });

  it("rejects a token TTL above a day", async () => {
    const err = await rejection(ca.token("acme", "/client/a", 86_401));
    assert.equal(errorCodeOf(err), "ERR_TOKEN_TTL_INVALID");
  });
});
