import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { callUnary } from "../../services/core/grpc/index.js";
import { DenySet } from "../../services/core/revocation/index.js";
import { SpiffeId } from "../../services/core/identity/index.js";
import { CaFixture, type EnrolledWorkload } from "./fixture.js";

/**
 * The CA and the deny set of relays and hubs must agree on which SVIDs a
 * SPIFFE ID revocation covers: those issued at or before it.
 */
describe("ca and deny set revocation rule", () => {
  let ca: CaFixture;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
  });

  afterEach(async () => {
    await ca.dispose();
  });

  async function revoke(spiffeId: string): Promise<void> {
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { spiffeId }, reason: "test" });
  }

  async function caReportsRevoked(workload: EnrolledWorkload): Promise<boolean> {
    const admin = ca.admin();
    const { svids } = await callUnary(admin.listSvids.bind(admin), { tenant: "acme", includeExpired: true });
    const record = svids.find((svid) => svid.serial === workload.serial);
    if (record === undefined) throw new Error(`SVID ${workload.serial} is not listed`);
    return record.revoked;
  }

  async function denySetReportsRevoked(workload: EnrolledWorkload): Promise<boolean> {
    const relay = ca.client(ca.operatorTls("relay"));
    const { revocations } = await callUnary(relay.listRevocations.bind(relay), { sinceSequence: 0n, limit: 0 });
    const denySet = new DenySet();
    for (const revocation of revocations) denySet.apply(revocation);
    const id = SpiffeId.parse(workload.spiffeId);
    const notBefore = new Date(new X509Certificate(workload.chainDer[0]).validFrom);
    return denySet.match({ spiffeId: workload.spiffeId, trustDomain: id.trustDomain, serial: workload.serial, notBefore }) !== undefined;
  }

  it("both deny the SVID revoked", async () => {
    const before = await ca.enroll(await ca.token("acme", "/client/a"));
    await revoke(before.spiffeId);
    assert.equal(await caReportsRevoked(before), true);
    assert.equal(await denySetReportsRevoked(before), true);
  });

  it("both admit a re-enrollment 30 s later", async () => {
    const before = await ca.enroll(await ca.token("acme", "/client/a"));
    await revoke(before.spiffeId);
    ca.clock.advance(30_000);
    const after = await ca.enroll(await ca.token("acme", "/client/a"));
    assert.equal(await caReportsRevoked(after), false);
    assert.equal(await denySetReportsRevoked(after), false);
  });

  it("both admit a re-enrollment in the same millisecond", async () => {
    const before = await ca.enroll(await ca.token("acme", "/client/a"));
    await revoke(before.spiffeId);
    const after = await ca.enroll(await ca.token("acme", "/client/a"));
    assert.equal(await caReportsRevoked(after), false);
    assert.equal(await denySetReportsRevoked(after), false);
  });
});
