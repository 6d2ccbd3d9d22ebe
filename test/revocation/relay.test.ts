import { strict as assert } from "node:assert";
import { callUnary } from "../../services/core/grpc/index.js";
import { collectRevocationAcks, InProcessRevocationBus, redisConnectionFromConfig } from "../../services/core/revocation/index.js";
import { busRevocationPublisher } from "../../services/ca/revocation-publisher.js";
import type { RunningRelay } from "../../services/relay/server.js";
import { RevocationFixture } from "./fixture.js";
import { operatorBundle, startTestRelay, TestClientLink } from "./relay-client.js";
import { waitUntil } from "./redis-server.js";

describe("relay revocation enforcement", function () {
  this.timeout(60_000);
  let fixture: RevocationFixture;
  let relays: RunningRelay[];
  let links: TestClientLink[];
  let clientId: string;

  beforeEach(async () => {
    fixture = await RevocationFixture.start();
    relays = [];
    links = [];
    await fixture.ca.createTenant("acme");
    const enrolled = await fixture.ca.enroll(await fixture.ca.token("acme", "/client/site-1"));
    clientId = enrolled.spiffeId;
    for (const id of ["relay-a", "relay-b"]) relays.push(await startTestRelay(fixture.ca, fixture.ca_running!.port, id, { redisUrl: fixture.redis.url }));
    for (const relay of relays) links.push(new TestClientLink(`127.0.0.1:${relay.port}`, enrolled.tls, operatorBundle(fixture.ca)));
    await waitUntil("the client on every relay", () => relays.every((relay) => relay.core.listClients().some((c) => c.spiffeId === clientId)));
  });

  afterEach(async () => {
    for (const link of links) link.stop();
    for (const relay of relays) await relay.close();
    await fixture.dispose();
  });

  it("closes the client's streams on every relay", async () => {
    const admin = fixture.ca.admin();
    const connectRedis = redisConnectionFromConfig({ url: fixture.redis.url });
    const { result, acks } = await collectRevocationAcks(connectRedis, 500, () => callUnary(admin.revoke.bind(admin), { target: { spiffeId: clientId }, reason: "test" }), (r) => Number(r.revocation!.sequence));
    const sequence = Number(result.revocation!.sequence);

    await waitUntil("every stream closed", () => relays.every((relay) => relay.revocationCounters().streamsClosed === 1));
    for (const relay of relays) assert.equal(relay.revocationSequence(), sequence);
    for (const link of links) assert.ok(link.transitions.some((t) => t.to === "backoff" && /revoked/.test(t.reason)), `no revoked close seen on ${link.link.address}`);
    assert.deepEqual(acks.map((ack) => [ack.node_id, ack.streams_closed]).sort(), [["relay-a", 1], ["relay-b", 1]]);
  });

  it("rejects the revoked client's reconnects", async () => {
    const admin = fixture.ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { spiffeId: clientId }, reason: "test" });
    await waitUntil("every stream closed", () => relays.every((relay) => relay.revocationCounters().streamsClosed === 1));
    const marks = links.map((link) => link.transitions.length);

    await waitUntil("two rejected reconnects per relay", () => links.every((link, i) => link.failedAttemptsSince(marks[i]) >= 2));
    for (const relay of relays) assert.equal(relay.core.listClients().length, 0);
    for (const [i, link] of links.entries()) assert.ok(!link.transitions.slice(marks[i]).some((t) => t.to === "connected"), `client reconnected to ${link.link.address}`);
  });
});

describe("relay on the in-process bus", function () {
  this.timeout(60_000);

  it("closes a revoked stream without Redis", async () => {
    const fixture = await RevocationFixture.start();
    const bus = new InProcessRevocationBus();
    fixture.ca_running!.context.publisher = busRevocationPublisher(bus);
    await fixture.ca.createTenant("acme");
    const enrolled = await fixture.ca.enroll(await fixture.ca.token("acme", "/client/site-1"));
    const relay = await startTestRelay(fixture.ca, fixture.ca_running!.port, "relay-dev", { revocationBus: bus });
    const link = new TestClientLink(`127.0.0.1:${relay.port}`, enrolled.tls, operatorBundle(fixture.ca));
    try {
      await waitUntil("the client stream", () => relay.core.listClients().length === 1);
      const admin = fixture.ca.admin();
      await callUnary(admin.revoke.bind(admin), { target: { spiffeId: enrolled.spiffeId }, reason: "test" });
      await waitUntil("the stream closed", () => relay.revocationCounters().streamsClosed === 1);
      assert.equal(bus.subscriberCount, 1);
    } finally {
      link.stop();
      await relay.close();
      await fixture.dispose();
    }
  });
});
