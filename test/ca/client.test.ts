import assert from "node:assert/strict";
import { generateKeyPair } from "../../services/core/identity/index.js";
import { enrollWithToken } from "../../services/ca/index.js";
import { CaFixture, codeOf, OPERATOR_TD, rejection } from "./fixture.js";

describe("ca client enrollWithToken", () => {
  let ca: CaFixture;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
  });

  afterEach(async () => {
    await ca.dispose();
  });

  it("enrolls after pinning the root", async () => {
    const result = await enrollWithToken({ caAddress: ca.address, token: await ca.token("acme", "/client/a"), keyPair: generateKeyPair() });
    assert.equal(result.spiffeId, `spiffe://acme.tenants.${OPERATOR_TD}/client/a`);
    assert.equal(result.operatorBundle.trustDomain, OPERATOR_TD);
    assert.equal(result.tenantBundle.trustDomain, `acme.tenants.${OPERATOR_TD}`);
  });

  it("rejects a CA with another root", async () => {
    const parts = (await ca.token("acme", "/client/a")).split(".");
    parts[3] = "ab".repeat(32);
    const err = await rejection(enrollWithToken({ caAddress: ca.address, token: parts.join("."), keyPair: generateKeyPair() }));
    assert.equal(codeOf(err), "ERR_CA_FINGERPRINT_MISMATCH");
  });
});
