import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { RelayTap, TransportFixture, queryRequest, runQuery, waitFor } from "./fixture.js";

describe("relay confidentiality", () => {
  let fixture: TransportFixture;

  before(async () => {
    fixture = await TransportFixture.start();
  });

  after(async () => {
    await fixture.close();
  });

  it("marker never visible to relay", async () => {
    const relay = fixture.relays[0];
    const tap = new RelayTap(relay.core);
    const acme = await fixture.enroll("acme", "/client/site-1");
    fixture.startClient(acme.identityDir);
    await waitFor("client registered", () => relay.core.listClients().length === 1);
    const marker = `MARKER-${randomBytes(8).toString("hex")}`;

    const messages = await runQuery(fixture.connector(), acme.spiffeId, queryRequest(marker));

    assert.equal(messages[1]?.rows?.rows[0]?.values[0]?.stringValue, marker);
    assert.ok(tap.seen.length >= 5, `the tap saw ${tap.seen.length} frames`);
    assert.equal(tap.sawBytes(Buffer.from(marker)), false);
    assert.ok(fixture.relayLogs[0].lines.length > 0);
    assert.equal(fixture.relayLogs[0].text().includes(marker), false);
  });
});
