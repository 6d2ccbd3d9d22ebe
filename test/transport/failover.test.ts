import assert from "node:assert/strict";
import { RelayLink } from "../../services/client/relay-link.js";
import { TransportFixture, runQuery, waitFor, type EnrolledClient, type FixtureClient } from "./fixture.js";

describe("relay failover", () => {
  let fixture: TransportFixture;
  let acme: EnrolledClient;
  let client: FixtureClient;

  before(async () => {
    fixture = await TransportFixture.start({ relays: 2 });
    acme = await fixture.enroll("acme", "/client/site-1");
    client = fixture.startClient(acme.identityDir);
    await waitFor("client on both relays", () => fixture.relays.every((relay) => relay.core.listClients().length === 1));
  });

  after(async () => {
    await fixture.close();
  });

  it("second relay serves after first closes", async () => {
    const connector = fixture.connector();
    await runQuery(connector, acme.spiffeId);
    const first = connector.connections()[0];
    const usedRelay = fixture.relays.find((relay) => relay.relayId === first.relayId)!;
    const remaining = fixture.relays.find((relay) => relay !== usedRelay)!;

    await usedRelay.close();
    await waitFor("connector dropped the dead session", () => connector.connections().length === 0);
    const messages = await runQuery(connector, acme.spiffeId);

    assert.equal(messages.at(-1)?.summary?.status, "ok");
    assert.equal(connector.connections()[0].relayId, remaining.relayId);
  });

  it("link reconnects to restarted relay", async () => {
    const closed = fixture.relays.find((relay) => relay.core.listClients().length === 0)!;
    const address = closed.address;
    const link = client.running.links.find((candidate) => candidate.address === address)!;
    await waitFor("link in backoff", () => link.state === "backoff" || link.state === "connecting");

    const restarted = await fixture.startRelay({ listen: address, relay_id: closed.relayId });
    await waitFor("link connected again", () => link.state === "connected");

    assert.equal(restarted.core.listClients()[0]?.spiffeId, acme.spiffeId);
  });

  it("transitions logged with relay and reason", () => {
    const transitions = client.log.entries("relay link state changed");
    const lost = transitions.find((entry) => entry.from === "connected" && entry.to === "backoff");

    assert.ok(lost !== undefined);
    assert.equal(typeof lost.relay_address, "string");
    assert.ok(String(lost.reason).length > 0);
    assert.ok(transitions.filter((entry) => entry.to === "connected").every((entry) => String(entry.relay_id).startsWith("relay-")));
  });

  it("scheduled delays within bound", () => {
    // The fixture's client uses reconnect.initial_ms 50 and max_ms 400; the
    // log line carries the attempt number after the increment.
    const delays = client.log.entries("reconnecting to relay after backoff");

    assert.ok(delays.length > 0);
    for (const entry of delays) {
      const ceiling = Math.min(400, 50 * 2 ** (Number(entry.attempt) - 1));
      assert.ok(Number(entry.delay_ms) >= 0 && Number(entry.delay_ms) < ceiling, `attempt ${entry.attempt}: ${entry.delay_ms} ms`);
    }
  });
});

describe("relay link backoff", () => {
  it("delay within full-jitter bound", () => {
    const initialMs = 50;
    const maxMs = 30_000;
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(maxMs, initialMs * 2 ** attempt);
      const lowest = RelayLink.backoffDelayMs(attempt, initialMs, maxMs, () => 0);
      const highest = RelayLink.backoffDelayMs(attempt, initialMs, maxMs, () => 1 - Number.EPSILON);

      assert.equal(lowest, 0, `attempt ${attempt}`);
      assert.ok(highest < ceiling, `attempt ${attempt}: ${highest} >= ${ceiling}`);
      assert.ok(highest >= ceiling - 1, `attempt ${attempt}: ${highest} far below ${ceiling}`);
    }
  });
});
