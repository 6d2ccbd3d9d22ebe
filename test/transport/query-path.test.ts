import assert from "node:assert/strict";
import { TransportFixture, runQuery, queryRequest, waitFor } from "./fixture.js";

describe("transport query path", () => {
  let fixture: TransportFixture;

  before(async () => {
    fixture = await TransportFixture.start();
  });

  after(async () => {
    await fixture.close();
  });

  it("query runs through the relay", async () => {
    const acme = await fixture.enroll("acme", "/client/site-1");
    const client = fixture.startClient(acme.identityDir);
    await waitFor("client registered", () => fixture.relays[0].core.listClients().some((stream) => stream.spiffeId === acme.spiffeId));
    const connector = fixture.connector();
    const messages = await runQuery(connector, acme.spiffeId, queryRequest("hello"));
    assert.equal(messages.at(-1)?.summary?.status, "ok");
    assert.equal(messages[1]?.rows?.rows[0]?.values[0]?.stringValue, "hello");
    assert.equal(client.runner.ran.length, 1);
  });
});
