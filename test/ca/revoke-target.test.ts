import assert from "node:assert/strict";
import type { RevocationTarget } from "../../gen/ewii/ca/v1/ca.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { CaFixture, OPERATOR_TD, codeOf, rejection } from "./fixture.js";

const ACME_TD = `acme.tenants.${OPERATOR_TD}`;

describe("ca revoke target", () => {
  let ca: CaFixture;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
  });

  afterEach(async () => {
    await ca.dispose();
  });

  function revoke(target: RevocationTarget): Promise<unknown> {
    const admin = ca.admin();
    return callUnary(admin.revoke.bind(admin), { target, reason: "test" });
  }

  it("rejects a prefix of another trust domain", async () => {
    const err = await rejection(revoke({ pathPrefix: "spiffe://other.example/" }));
    assert.equal(codeOf(err), "ERR_TRUST_DOMAIN_UNKNOWN");
  });

  it("rejects a SPIFFE ID of another trust domain", async () => {
    const err = await rejection(revoke({ spiffeId: "spiffe://other.example/client/a" }));
    assert.equal(codeOf(err), "ERR_TRUST_DOMAIN_UNKNOWN");
  });

  it("persists nothing for a rejected target", async () => {
    await rejection(revoke({ pathPrefix: "spiffe://other.example/" }));
    assert.equal(ca.running!.store.latestRevocationSequence(), 0);
  });

  for (const prefix of ["client/x", `spiffe://${ACME_TD}/client//x`, `spiffe://${ACME_TD}/client/x//`, `spiffe://${ACME_TD}/client/x?y`]) {
    it(`rejects prefix ${JSON.stringify(prefix)}`, async () => {
      const err = await rejection(revoke({ pathPrefix: prefix }));
      assert.equal(codeOf(err), "ERR_REVOCATION_TARGET_INVALID");
    });
  }

  it("accepts a tenant prefix", async () => {
    await revoke({ pathPrefix: `spiffe://${ACME_TD}/client/` });
    assert.equal(ca.running!.store.latestRevocationSequence(), 1);
  });

  it("accepts an operator prefix", async () => {
    await revoke({ pathPrefix: `spiffe://${OPERATOR_TD}/caller/` });
    assert.equal(ca.running!.store.latestRevocationSequence(), 1);
  });
});
