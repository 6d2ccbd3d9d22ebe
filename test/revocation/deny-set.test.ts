import { strict as assert } from "node:assert";
import type { Revocation } from "../../gen/ewii/ca/v1/ca.js";
import { NOT_BEFORE_BACKDATE_MS } from "../../services/core/identity/index.js";
import { DenySet } from "../../services/core/revocation/index.js";

const TD = "acme.tenants.operator.test";
const CLIENT = `spiffe://${TD}/client/site-1`;
const REVOKED_AT = new Date("2026-12-04T10:00:00.000Z");

function revocation(target: Revocation["target"]): Revocation {
  return { sequence: 1n, target, reason: "", revokedAt: REVOKED_AT, revokedBy: "", expiresAt: new Date(REVOKED_AT.getTime() + 86_400_000), trustDomain: TD };
}

/** notBefore of a certificate the CA issued `offsetMs` after the revocation. */
function notBeforeIssuedAfter(offsetMs: number): Date {
  return new Date(REVOKED_AT.getTime() + offsetMs - NOT_BEFORE_BACKDATE_MS);
}

describe("deny set issue time", () => {
  for (const [kind, target] of [
    ["spiffe_id", { spiffeId: CLIENT }],
    ["path_prefix", { pathPrefix: `spiffe://${TD}/client` }],
    ["tenant", { tenant: "acme" }],
  ] as const) {
    it(`${kind}: denies an SVID issued at the revocation`, () => {
      const denySet = new DenySet();
      denySet.apply(revocation(target));
      assert.equal(denySet.match({ spiffeId: CLIENT, trustDomain: TD, serial: "ab", notBefore: notBeforeIssuedAfter(0) }), 1);
    });

    it(`${kind}: admits an SVID issued 30 s after`, () => {
      const denySet = new DenySet();
      denySet.apply(revocation(target));
      assert.equal(denySet.match({ spiffeId: CLIENT, trustDomain: TD, serial: "ab", notBefore: notBeforeIssuedAfter(30_000) }), undefined);
    });
  }

  it("serial: denies whatever the notBefore", () => {
    const denySet = new DenySet();
    denySet.apply(revocation({ serial: "AB" }));
    assert.equal(denySet.match({ spiffeId: CLIENT, trustDomain: TD, serial: "ab", notBefore: notBeforeIssuedAfter(30_000) }), 1);
  });
});
