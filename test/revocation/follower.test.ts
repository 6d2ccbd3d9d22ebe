import { strict as assert } from "node:assert";
import { RevocationFixture } from "./fixture.js";
import { waitUntil } from "./redis-server.js";

describe("revocation follower over Redis", function () {
  this.timeout(120_000);
  let fixture: RevocationFixture;

  beforeEach(async () => {
    fixture = await RevocationFixture.start();
  });

  afterEach(async () => {
    await fixture.dispose();
  });

  it("applies a pushed revocation without polling", async () => {
    const follower = await fixture.follower();
    await waitUntil("the bus subscription", () => follower.follower.counters.reconnects > 0);
    const sequence = await fixture.revokeClient("pushed");
    await waitUntil("the pushed revocation", () => follower.denySet.sequence === sequence);
    assert.equal(follower.follower.counters.pushedApplied, 1);
  });

  it("applies a burst of 1000 in order everywhere", async () => {
    const followers = [await fixture.follower(), await fixture.follower(), await fixture.follower()];
    await waitUntil("every bus subscription", () => followers.every((f) => f.follower.counters.reconnects > 0));
    const expected: number[] = [];
    for (let i = 0; i < 1000; i++) expected.push(await fixture.revokeClient(`burst-${i}`));

    await waitUntil("every follower at the last sequence", () => followers.every((f) => f.denySet.sequence === expected[expected.length - 1]));
    for (const [i, follower] of followers.entries()) {
      assert.deepEqual(follower.applied, expected, `follower ${i} applied revocations out of order or missed some`);
    }
  });

  it("enforces revocations made while Redis was down", async () => {
    const follower = await fixture.follower();
    await waitUntil("the bus subscription", () => follower.follower.counters.reconnects === 1);
    await fixture.redis.stop();
    const during = [await fixture.revokeClient("outage-1"), await fixture.revokeClient("outage-2"), await fixture.revokeClient("outage-3")];
    await fixture.redis.start();

    // Polls are a minute apart here, so only the reconnect catch-up can deliver them in time.
    await waitUntil("the reconnect catch-up", () => follower.denySet.sequence === during[2]);
    assert.deepEqual(follower.applied, during);
    assert.equal(follower.follower.counters.reconnects, 2);
    const after = await fixture.revokeClient("after-outage");
    await waitUntil("a pushed revocation after recovery", () => follower.denySet.sequence === after);
  });

  it("catches up a restarted subscriber", async () => {
    const first = await fixture.follower();
    await fixture.revokeClient("before-restart");
    await waitUntil("the first revocation", () => first.denySet.sequence === 1);
    await first.stop();
    await fixture.revokeClient("while-stopped-1");
    await fixture.revokeClient("while-stopped-2");

    const restarted = await fixture.follower();
    assert.deepEqual(restarted.applied, [1, 2, 3]);
  });

  it("catches up on a sequence gap", async () => {
    const follower = await fixture.follower();
    await waitUntil("the bus subscription", () => follower.follower.counters.reconnects > 0);
    // A revocation persisted without publishing stands for a lost message.
    const context = fixture.ca_running!.context;
    const publisher = context.publisher;
    context.publisher = { publish: async () => {} };
    await fixture.revokeClient("lost");
    context.publisher = publisher;
    const next = await fixture.revokeClient("after-loss");

    await waitUntil("the gap catch-up", () => follower.denySet.sequence === next);
    assert.deepEqual(follower.applied, [next - 1, next]);
    assert.equal(follower.follower.counters.gaps, 1);
  });
});

describe("revocation staleness", function () {
  this.timeout(60_000);
  let fixture: RevocationFixture;

  beforeEach(async () => {
    fixture = await RevocationFixture.start();
  });

  afterEach(async () => {
    await fixture.dispose();
  });

  it("trips with CA and Redis down, then clears", async () => {
    const changes: boolean[] = [];
    const follower = await fixture.follower({ pollIntervalMs: 100, stalenessBoundMs: 300, onStaleChange: (stale) => changes.push(stale) });
    await waitUntil("the bus subscription", () => follower.follower.counters.reconnects > 0);
    assert.equal(follower.follower.isStale(), false);

    await fixture.stopCa();
    await fixture.redis.stop();
    await waitUntil("the stale flag", () => changes.includes(true));
    assert.match(follower.follower.reason, /CA is unreachable and the revocation bus is disconnected/);

    await fixture.redis.start();
    await fixture.startCa();
    const sequence = await fixture.revokeClient("after-recovery");
    await waitUntil("recovery", () => !follower.follower.isStale() && follower.denySet.sequence === sequence);
    // The first entry is the initial load, which ends the "not loaded yet" state.
    assert.deepEqual(changes, [false, true, false]);
  });

  it("stays current with only the CA down", async () => {
    const follower = await fixture.follower({ pollIntervalMs: 100, stalenessBoundMs: 300 });
    await waitUntil("the bus subscription", () => follower.follower.counters.reconnects > 0);
    await fixture.stopCa();
    await waitUntil("several failed polls", () => follower.follower.counters.catchUpFailures >= 5);
    assert.equal(follower.follower.isStale(), false);
  });

  it("stays current with only Redis down", async () => {
    const follower = await fixture.follower({ pollIntervalMs: 100, stalenessBoundMs: 300 });
    await fixture.redis.stop();
    const polls = follower.follower.counters.caughtUp;
    const sequence = await fixture.revokeClient("polled");
    await waitUntil("the polled revocation", () => follower.denySet.sequence === sequence);
    assert.equal(follower.follower.counters.caughtUp, polls + 1);
    assert.equal(follower.follower.isStale(), false);
  });
});
