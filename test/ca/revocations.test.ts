import assert from "node:assert/strict";
import { X509Crl } from "@peculiar/x509";
import { errorCodeOf } from "../../services/core/errors.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { isRevoked } from "../../services/ca/index.js";
import { CaFixture, OPERATOR_TD, rejection } from "./fixture.js";

const ACME_TD = `acme.tenants.${OPERATOR_TD}`;

describe("ca revocations", () => {
  let ca: CaFixture;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
  });

  afterEach(async () => {
    await ca.dispose();
  });

  async function revokeId(path: string): Promise<bigint> {
    const admin = ca.admin();
    const response = await callUnary(admin.revoke.bind(admin), { target: { spiffeId: `spiffe://${ACME_TD}${path}` }, reason: "test" });
    return response.revocation!.sequence;
  }

  it("numbers revocations from 1 upward", async () => {
    const sequences = [await revokeId("/a"), await revokeId("/b"), await revokeId("/c")];
    assert.deepEqual(sequences, [1n, 2n, 3n]);
  });

  it("lists the slice after since", async () => {
    for (const path of ["/a", "/b", "/c", "/d"]) await revokeId(path);
    const relay = ca.client(ca.operatorTls("relay"));
    const response = await callUnary(relay.listRevocations.bind(relay), { sinceSequence: 2n, limit: 1 });
    assert.deepEqual(response.revocations.map((entry) => entry.sequence), [3n]);
    assert.equal(response.latestSequence, 4n);
  });

  it("sets expiry to the covered SVID's notAfter", async () => {
    const workload = await ca.enroll(await ca.token("acme", "/client/a"));
    const admin = ca.admin();
    const response = await callUnary(admin.revoke.bind(admin), { target: { spiffeId: workload.spiffeId }, reason: "" });
    const svids = await callUnary(admin.listSvids.bind(admin), { tenant: "acme", includeExpired: true });
    assert.equal(response.revocation!.expiresAt!.getTime(), svids.svids[0].notAfter!.getTime());
  });

  it("matches path prefixes on segment boundaries", async () => {
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { pathPrefix: `spiffe://${ACME_TD}/client/site-1/` }, reason: "" });
    const context = ca.running!.context;
    const check = (path: string): boolean => isRevoked(context, { spiffeId: `spiffe://${ACME_TD}${path}`, serial: "abc", trustDomain: ACME_TD });
    assert.equal(check("/client/site-1"), true);
    assert.equal(check("/client/site-1/db"), true);
    assert.equal(check("/client/site-10"), false);
  });

  it("rejects an unknown serial", async () => {
    const admin = ca.admin();
    const err = await rejection(callUnary(admin.revoke.bind(admin), { target: { serial: "deadbeef" }, reason: "" }));
    assert.equal(errorCodeOf(err), "ERR_SERIAL_NOT_FOUND");
  });

  it("rejects a reason over 256 characters", async () => {
    const admin = ca.admin();
    const err = await rejection(callUnary(admin.revoke.bind(admin), { target: { tenant: "acme" }, reason: "x".repeat(257) }));
    assert.equal(errorCodeOf(err), "ERR_REVOCATION_REASON_TOO_LONG");
  });

  it("lists revoked serials in the CRL", async () => {
    const workload = await ca.enroll(await ca.token("acme", "/client/a"));
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { serial: workload.serial }, reason: "" });
    const response = await callUnary(admin.getCrl.bind(admin), { tenant: "acme" });
    const crl = new X509Crl(new Uint8Array(response.crlDer));
    const serials = (crl.entries ?? []).map((entry) => entry.serialNumber.toLowerCase().replace(/^0+/, ""));
    assert.deepEqual(serials, [workload.serial]);
    assert.equal(response.sequence, 1n);
  });
});
