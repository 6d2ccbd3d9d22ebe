import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import type { CAServiceClient } from "../../gen/ewii/ca/v1/ca.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { CaFixture, OPERATOR_TD, codeOf, rejection } from "./fixture.js";

const ACME_TD = `acme.tenants.${OPERATOR_TD}`;
const GLOBEX_TD = `globex.tenants.${OPERATOR_TD}`;

describe("ca tenant isolation", () => {
  let ca: CaFixture;
  let globex: CAServiceClient;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
    await ca.createTenant("globex");
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { spiffeId: `spiffe://${ACME_TD}/client/a` }, reason: "acme secret" });
    globex = ca.client((await ca.enroll(await ca.token("globex", "/client/g"))).tls);
  });

  afterEach(async () => {
    await ca.dispose();
  });

  it("tenant client cannot list revocations", async () => {
    const err = await rejection(callUnary(globex.listRevocations.bind(globex), { sinceSequence: 0n, limit: 0 }));
    assert.equal((err as { code?: number }).code, status.PERMISSION_DENIED);
  });

  it("relay lists revocations", async () => {
    const relay = ca.client(ca.operatorTls("relay"));
    const response = await callUnary(relay.listRevocations.bind(relay), { sinceSequence: 0n, limit: 0 });
    assert.equal(response.revocations.length, 1);
  });

  it("tenant client cannot read another CRL", async () => {
    const err = await rejection(callUnary(globex.getCrl.bind(globex), { tenant: "acme" }));
    assert.equal(codeOf(err), "ERR_TENANT_ACCESS_DENIED");
  });

  it("tenant client cannot probe tenant names", async () => {
    const err = await rejection(callUnary(globex.getCrl.bind(globex), { tenant: "no-such-tenant" }));
    assert.equal(codeOf(err), "ERR_TENANT_ACCESS_DENIED");
  });

  it("tenant client reads its own CRL", async () => {
    const response = await callUnary(globex.getCrl.bind(globex), { tenant: "globex" });
    assert.ok(response.crlDer.length > 0);
  });

  it("tenant client cannot read another bundle", async () => {
    const err = await rejection(callUnary(globex.getTrustBundle.bind(globex), { trustDomain: ACME_TD }));
    assert.equal(codeOf(err), "ERR_TENANT_ACCESS_DENIED");
  });

  it("tenant client reads the operator bundle", async () => {
    const response = await callUnary(globex.getTrustBundle.bind(globex), { trustDomain: OPERATOR_TD });
    assert.equal(response.bundle!.trustDomain, OPERATOR_TD);
  });

  it("tenant client lists only its bundles", async () => {
    const response = await callUnary(globex.listTrustBundles.bind(globex), {});
    assert.deepEqual(response.bundles.map((bundle) => bundle.trustDomain), [OPERATOR_TD, GLOBEX_TD]);
  });

  it("relay lists every bundle", async () => {
    const relay = ca.client(ca.operatorTls("relay"));
    const response = await callUnary(relay.listTrustBundles.bind(relay), {});
    assert.deepEqual(response.bundles.map((bundle) => bundle.trustDomain), [OPERATOR_TD, ACME_TD, GLOBEX_TD]);
  });
});
