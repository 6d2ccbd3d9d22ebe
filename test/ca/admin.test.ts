import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { errorCodeOf } from "../../services/core/errors.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { CaFixture, OPERATOR_TD, rejection } from "./fixture.js";

describe("ca admin", () => {
  let ca: CaFixture;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
  });

  afterEach(async () => {
    await ca.dispose();
  });

  it("refuses an operator caller", async () => {
    const caller = ca.client(ca.operatorTls("billing"));
    const err = await rejection(callUnary(caller.createTenant.bind(caller), { name: "evil" }));
    assert.equal(errorCodeOf(err), "ERR_NOT_ADMIN");
    assert.equal((err as { code?: number }).code, status.PERMISSION_DENIED);
    assert.match((err as Error).message, /spiffe:\/\/operator\.test\/caller\/billing/);
  });

  it("refuses a tenant workload", async () => {
    const workload = await ca.enroll(await ca.token("acme", "/admin/x"));
    const client = ca.client(workload.tls);
    const err = await rejection(callUnary(client.createJoinToken.bind(client), { tenant: "acme", spiffeIdPath: "/client/y", ttlSeconds: 0 }));
    assert.equal(errorCodeOf(err), "ERR_NOT_ADMIN");
  });

  it("refuses an anonymous caller", async () => {
    const client = ca.client();
    const err = await rejection(callUnary(client.listTenants.bind(client), {}));
    assert.equal(errorCodeOf(err), "ERR_PEER_REQUIRED");
  });

  it("lists a tenant workload its own bundles", async () => {
    await ca.createTenant("beta");
    const workload = await ca.enroll(await ca.token("acme", "/client/a"));
    const client = ca.client(workload.tls);
    const response = await callUnary(client.listTrustBundles.bind(client), {});
    assert.deepEqual(
      response.bundles.map((bundle) => bundle.trustDomain),
      [OPERATOR_TD, `acme.tenants.${OPERATOR_TD}`],
    );
  });

  it("lists bundles for operator workloads", async () => {
    const relay = ca.client(ca.operatorTls("relay"));
    const response = await callUnary(relay.listTrustBundles.bind(relay), {});
    assert.deepEqual(
      response.bundles.map((bundle) => bundle.trustDomain),
      [OPERATOR_TD, `acme.tenants.${OPERATOR_TD}`],
    );
  });

  it("rejects a duplicate tenant", async () => {
    const err = await rejection(ca.createTenant("acme"));
    assert.equal(errorCodeOf(err), "ERR_TENANT_EXISTS");
  });

  it("rejects an invalid tenant name", async () => {
    const err = await rejection(ca.createTenant("Acme_Corp"));
    assert.equal(errorCodeOf(err), "ERR_TENANT_NAME_INVALID");
  });

  it("lists tenants with fingerprints", async () => {
    const admin = ca.admin();
    const response = await callUnary(admin.listTenants.bind(admin), {});
    assert.equal(response.tenants.length, 1);
    assert.equal(response.tenants[0].caFingerprints.length, 1);
    assert.equal(response.tenants[0].rolloverPhase, "none");
  });

  it("lists SVIDs with revoked flags", async () => {
    const workload = await ca.enroll(await ca.token("acme", "/client/a"));
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { serial: workload.serial }, reason: "" });
    const response = await callUnary(admin.listSvids.bind(admin), { tenant: "acme", includeExpired: false });
    assert.equal(response.svids.length, 1);
    assert.equal(response.svids[0].revoked, true);
    assert.equal(response.svids[0].issuedBy, "enroll");
  });

  it("disables a tenant's workloads", async () => {
    const workload = await ca.enroll(await ca.token("acme", "/client/a"));
    const admin = ca.admin();
    const disabled = await callUnary(admin.disableTenant.bind(admin), { name: "acme" });
    assert.equal(disabled.tenant!.enabled, false);
    assert.equal(disabled.revocation!.target!.tenant, "acme");
    const client = ca.client(workload.tls);
    const err = await rejection(callUnary(client.listRevocations.bind(client), { sinceSequence: 0n, limit: 0 }));
    assert.equal((err as { code?: number }).code, status.UNAUTHENTICATED);
  });
});
