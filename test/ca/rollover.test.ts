import assert from "node:assert/strict";
import { errorCodeOf } from "../../services/core/errors.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { TrustBundle, verifyX509Svid } from "../../services/core/identity/index.js";
import { CaFixture, OPERATOR_TD, rejection, type EnrolledWorkload } from "./fixture.js";

const ACME_TD = `acme.tenants.${OPERATOR_TD}`;

describe("ca rollover", () => {
  let ca: CaFixture;
  let old: EnrolledWorkload;

  async function bundle(): Promise<TrustBundle> {
    const admin = ca.admin();
    const response = await callUnary(admin.getTrustBundle.bind(admin), { trustDomain: ACME_TD });
    return TrustBundle.fromJwks(ACME_TD, response.bundle!.jwks);
  }

  function validates(workload: EnrolledWorkload, current: TrustBundle): boolean {
    try {
      verifyX509Svid(workload.chainDer, { get: (td) => (td === ACME_TD ? current : undefined) }, { now: ca.clock.now() });
      return true;
    } catch {
      return false;
    }
  }

  async function rollTo(phase: "prepared" | "activated"): Promise<void> {
    const admin = ca.admin();
    await callUnary(admin.prepareRollover.bind(admin), { tenant: "acme" });
    if (phase === "activated") await callUnary(admin.activateRollover.bind(admin), { tenant: "acme" });
  }

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
    old = await ca.enroll(await ca.token("acme", "/client/old"));
  });

  afterEach(async () => {
    await ca.dispose();
  });

  it("adds the prepared CA to the bundle", async () => {
    const before = await bundle();
    await rollTo("prepared");
    const after = await bundle();
    assert.equal(after.authorities.length, 2);
    assert.ok(after.sequence > before.sequence);
  });

  it("validates old and new SVIDs in overlap", async () => {
    await rollTo("activated");
    const fresh = await ca.enroll(await ca.token("acme", "/client/new"));
    const current = await bundle();
    assert.equal(validates(old, current), true);
    assert.equal(validates(fresh, current), true);
    assert.notEqual(fresh.chainDer[0].subarray(-80).toString("hex"), old.chainDer[0].subarray(-80).toString("hex"));
  });

  it("signs with the new CA after activate", async () => {
    await rollTo("activated");
    const fresh = await ca.enroll(await ca.token("acme", "/client/new"));
    const admin = ca.admin();
    const tenant = await callUnary(admin.getTenant.bind(admin), { name: "acme" });
    const signing = (await bundle()).authorities[0];
    assert.equal(tenant.tenant!.rolloverPhase, "activated");
    assert.ok(new (await import("node:crypto")).X509Certificate(fresh.chainDer[0]).verify(signing.publicKey));
  });

  it("refuses retire while old SVIDs are valid", async () => {
    await rollTo("activated");
    const admin = ca.admin();
    const err = await rejection(callUnary(admin.retireRollover.bind(admin), { tenant: "acme", force: false }));
    assert.equal(errorCodeOf(err), "ERR_ROLLOVER_PREVIOUS_STILL_VALID");
    assert.match((err as Error).message, /signed 1 SVIDs that are valid until/);
  });

  it("validates only new SVIDs after retire", async () => {
    await rollTo("activated");
    const fresh = await ca.enroll(await ca.token("acme", "/client/new"));
    const admin = ca.admin();
    await callUnary(admin.retireRollover.bind(admin), { tenant: "acme", force: true });
    const current = await bundle();
    assert.equal(current.authorities.length, 1);
    assert.equal(validates(old, current), false);
    assert.equal(validates(fresh, current), true);
  });

  it("retires once old SVIDs expire", async () => {
    await ca.stop();
    await ca.start(120);
    await ca.enroll(await ca.token("acme", "/client/short"));
    await rollTo("activated");
    // Past the 24 h SVID from beforeEach would also expire the admin's SVID, so that one is revoked instead.
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { serial: old.serial }, reason: "" });
    ca.clock.advance(3 * 60 * 1000);
    const response = await callUnary(admin.retireRollover.bind(admin), { tenant: "acme", force: false });
    assert.equal(response.tenant!.rolloverPhase, "none");
  });

  it("rejects activate before prepare", async () => {
    const admin = ca.admin();
    const err = await rejection(callUnary(admin.activateRollover.bind(admin), { tenant: "acme" }));
    assert.equal(errorCodeOf(err), "ERR_ROLLOVER_PHASE");
  });

  it("lets a new-CA workload call the CA", async () => {
    await rollTo("activated");
    const fresh = await ca.enroll(await ca.token("acme", "/client/new"));
    const client = ca.client(fresh.tls);
    const response = await callUnary(client.getTrustBundle.bind(client), { trustDomain: ACME_TD });
    assert.equal(response.bundle!.trustDomain, ACME_TD);
  });
});
