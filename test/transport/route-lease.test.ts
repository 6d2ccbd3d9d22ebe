import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { RedisRouteRegistry } from "../../services/core/routes/index.js";
import { FAST_TIMERS, OPERATOR_TD, TransportFixture, spawnRelayProcess, waitFor, type RelayProcess } from "./fixture.js";
import { RedisServer } from "./redis-server.js";

const ROUTE_LEASE_MS = 3000;

describe("route lease in Redis", () => {
  let redisServer: RedisServer;
  let redis: Redis;
  let registry: RedisRouteRegistry;
  let fixture: TransportFixture;
  let relay: RelayProcess | undefined;

  before(async () => {
    redisServer = await RedisServer.start();
    redis = redisServer.client();
    registry = new RedisRouteRegistry(redis);
    fixture = await TransportFixture.start({ relays: 0, routes: registry });
  });

  after(async () => {
    relay?.child.kill("SIGKILL");
    await fixture.close();
    redis.disconnect();
    await redisServer.stop();
  });

  it("route expires after relay dies", async () => {
    relay = await spawnRelayProcess(fixture.dataDir, {
      listen: "127.0.0.1:0",
      relay_id: "relay-killed",
      credentials_dir: fixture.operatorDir("relay"),
      ca_address: fixture.ca.address,
      operator_trust_domain: OPERATOR_TD,
      redis_url: redisServer.url,
      ...FAST_TIMERS,
      route_lease_ms: ROUTE_LEASE_MS,
    });
    const acme = await fixture.enroll("acme", "/client/site-1");
    const client = fixture.startClient(acme.identityDir, { relays: [relay.address] });
    await waitFor("route registered", async () => (await registry.lookup(acme.spiffeId)).length === 1);

    // SIGKILL: the relay neither unregisters the route nor renews its lease.
    const exited = new Promise((done) => relay!.child.once("exit", done));
    relay.child.kill("SIGKILL");
    await exited;
    const afterKill = await registry.lookup(acme.spiffeId);
    await waitFor("link lost", () => client.running.links[0].state !== "connected");

    assert.equal(afterKill[0]?.relayId, "relay-killed");
    await waitFor("route lease expired", async () => (await registry.lookup(acme.spiffeId)).length === 0, ROUTE_LEASE_MS * 3);
    await waitFor("route key removed", async () => (await redis.exists(`ewii:route:${acme.spiffeId}`)) === 0, ROUTE_LEASE_MS * 3);
    assert.equal((await registry.relays()).has("relay-killed"), false);
  });
});
