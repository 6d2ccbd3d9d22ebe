import assert from "node:assert/strict";
import { callUnary } from "../../services/core/grpc/index.js";
import type { RevocationTarget } from "../../gen/ewii/ca/v1/ca.js";
import { CaFixture, OPERATOR_TD, codeOf, rejection } from "./fixture.js";

const ACME_TD = `acme.tenants.${OPERATOR_TD}`;

describe("ca join tokens after a revocation", () => {
  let ca: CaFixture;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
  });

  afterEach(async () => {
    await ca.dispose();
  });

  async function revoke(target: RevocationTarget): Promise<void> {
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target, reason: "test" });
  }

  it("spiffe_id: rejects an earlier token", async () => {
    const token = await ca.token("acme", "/client/a");
    await revoke({ spiffeId: `spiffe://${ACME_TD}/client/a` });
    assert.equal(codeOf(await rejection(ca.enroll(token))), "ERR_TOKEN_REVOKED");
  });

  it("path_prefix: rejects tokens under it", async () => {
    const under = await ca.token("acme", "/client/a/db");
    await revoke({ pathPrefix: `spiffe://${ACME_TD}/client/a/` });
    assert.equal(codeOf(await rejection(ca.enroll(under))), "ERR_TOKEN_REVOKED");
  });

  it("path_prefix: keeps a sibling's token", async () => {
    const sibling = await ca.token("acme", "/client/ab");
    await revoke({ pathPrefix: `spiffe://${ACME_TD}/client/a` });
    const workload = await ca.enroll(sibling);
    assert.equal(workload.spiffeId, `spiffe://${ACME_TD}/client/ab`);
  });

  it("tenant: rejects every earlier token", async () => {
    const token = await ca.token("acme", "/client/z");
    await revoke({ tenant: "acme" });
    assert.equal(codeOf(await rejection(ca.enroll(token))), "ERR_TOKEN_REVOKED");
  });

  it("serial: keeps tokens", async () => {
    const enrolled = await ca.enroll(await ca.token("acme", "/client/a"));
    const token = await ca.token("acme", "/client/a");
    await revoke({ serial: enrolled.serial });
    const workload = await ca.enroll(token);
    assert.equal(workload.spiffeId, enrolled.spiffeId);
  });

  it("accepts a token created after", async () => {
    await revoke({ spiffeId: `spiffe://${ACME_TD}/client/a` });
    const workload = await ca.enroll(await ca.token("acme", "/client/a"));
    assert.equal(workload.spiffeId, `spiffe://${ACME_TD}/client/a`);
  });

  it("names the fix in the error", async () => {
    const token = await ca.token("acme", "/client/a");
    await revoke({ spiffeId: `spiffe://${ACME_TD}/client/a` });
    const err = await rejection(ca.enroll(token));
    assert.match(String((err as Error).message), /create a new token with "ewii token create"/);
  });
});
