import assert from "node:assert/strict";
import type { ConnectResponse } from "../../gen/ewii/relay/v1/relay.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { OPERATOR_TD, TransportFixture, waitFor, type FixtureClient } from "./fixture.js";

const HOUR_MS = 3600 * 1000;
const ACME_TD = `acme.tenants.${OPERATOR_TD}`;

/** Reasons of the client's link transitions into backoff. */
function backoffReasons(client: FixtureClient): string[] {
  return client.log.entries("relay link state changed").filter((entry) => entry.to === "backoff").map((entry) => String(entry.reason));
}

describe("relay admission", () => {
  let fixture: TransportFixture;

  before(async () => {
    fixture = await TransportFixture.start();
  });

  after(async () => {
    await fixture.close();
  });

  async function registeredIds(): Promise<string[]> {
    return (await fixture.listStreams(fixture.relays[0])).map((stream) => stream.spiffeId);
  }

  it("cross-tenant certificate rejected", async () => {
    const spiffeId = `spiffe://${ACME_TD}/client/forged`;
    const dir = fixture.craftIdentity("forged", { spiffeId, signerTenant: "globex", notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + HOUR_MS) });
    const client = fixture.startClient(dir);
    await waitFor("two failed attempts", () => backoffReasons(client).length >= 2);
    await client.running.stop();

    assert.ok(backoffReasons(client).every((reason) => reason.includes("ERR_SVID")), backoffReasons(client).join(" | "));
    assert.equal(client.log.entries("relay link state changed").some((entry) => entry.to === "connected"), false);
    assert.equal((await registeredIds()).includes(spiffeId), false);
    assert.equal(fixture.relays[0].core.listClients().length, 0);
  });

  it("crafted valid SVID accepted", async () => {
    // Control for the cases below: the same crafting path with the right
    // issuer and dates registers, so their rejections come from the defect.
    const spiffeId = `spiffe://${ACME_TD}/client/crafted`;
    const dir = fixture.craftIdentity("crafted", { spiffeId, signerTenant: "acme", notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + HOUR_MS) });
    const client = fixture.startClient(dir);
    await waitFor("stream registered", async () => (await registeredIds()).includes(spiffeId));
    await client.running.stop();
    await waitFor("stream removed", async () => !(await registeredIds()).includes(spiffeId));
  });

  it("expired SVID rejected", async () => {
    const spiffeId = `spiffe://${ACME_TD}/client/expired`;
    const dir = fixture.craftIdentity("expired", { spiffeId, signerTenant: "acme", notBefore: new Date(Date.now() - 2 * HOUR_MS), notAfter: new Date(Date.now() - HOUR_MS) });
    const client = fixture.startClient(dir);
    await waitFor("two failed attempts", () => backoffReasons(client).length >= 2);
    await client.running.stop();

    assert.equal(client.log.entries("relay link state changed").some((entry) => entry.to === "connected"), false);
    assert.equal((await registeredIds()).includes(spiffeId), false);
  });

  it("revoked serial dropped and rejected", async () => {
    const enrolled = await fixture.enroll("acme", "/client/revoked");
    const client = fixture.startClient(enrolled.identityDir);
    await waitFor("stream registered", async () => (await registeredIds()).includes(enrolled.spiffeId));

    const admin = fixture.caAdmin();
    const response = await callUnary(admin.revoke.bind(admin), { target: { serial: enrolled.serial }, reason: "test" });
    admin.close();
    const sequence = Number(response.revocation?.sequence);
    await waitFor("relay applied the revocation", () => fixture.relays[0].denySet.sequence >= sequence);
    await waitFor("reconnect rejected as revoked", () => backoffReasons(client).filter((reason) => reason.includes("ERR_REVOKED")).length >= 2);
    await client.running.stop();

    assert.equal((await registeredIds()).includes(enrolled.spiffeId), false);
    assert.ok(fixture.relays[0].core.counters.streamsClosedByRevocation >= 1);
  });

  it("anonymous stream rejected", async () => {
    const anonymous = fixture.relayClient(fixture.relays[0]);
    const call = anonymous.connect();
    const failure = await new Promise<unknown>((resolve) => {
      call.on("data", (_response: ConnectResponse) => resolve(new Error("the relay answered an anonymous stream")));
      call.on("error", resolve);
      call.write({ heartbeat: { sentUnixMs: BigInt(Date.now()) } });
    });
    anonymous.close();

    assert.ok(failure instanceof Error);
    assert.match(failure.message, /certificate required/);
    assert.equal(fixture.relays[0].core.listClients().length, 0);
  });
});
