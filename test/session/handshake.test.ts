import assert from "node:assert/strict";
import { Handshake, Role } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { ClientHandshake, HandshakeReplayCache, HubHandshake } from "../../services/core/session/index.js";
import { nobleSuite } from "../../services/core/crypto/index.js";
import { clientOptions, createIdentities, establishPair, hubOptions, TestClock } from "./fixtures.js";
import type { Identities } from "./fixtures.js";

const heartbeat = { heartbeat: { sentUnixMs: 1n } };

describe("session handshake", () => {
  let ids: Identities;

  before(async () => {
    ids = await createIdentities();
  });

  it("establishes session both ways", () => {
    const { hub, client } = establishPair(ids);
    assert.deepEqual(client.open(hub.seal(heartbeat)).heartbeat, heartbeat.heartbeat);
    assert.deepEqual(hub.open(client.seal(heartbeat)).heartbeat, heartbeat.heartbeat);
  });

  it("reports peer identities", () => {
    const { hub, client } = establishPair(ids);
    assert.equal(hub.peerSpiffeId, ids.client.spiffeId);
    assert.equal(client.peerSpiffeId, ids.hub.spiffeId);
    assert.match(hub.peerSerial, /^[0-9a-f]+$/);
  });

  it("shares one session id", () => {
    const { hub, client } = establishPair(ids);
    assert.deepEqual(hub.id, client.id);
    assert.equal(hub.id.length, 16);
  });

  it("returns hub spiffe id to client", () => {
    const { message } = HubHandshake.start(hubOptions(ids));
    const reply = ClientHandshake.respond(clientOptions(ids), message);
    assert.equal(reply.hubSpiffeId, ids.hub.spiffeId);
  });

  it("survives protobuf round trip", () => {
    const { message, hs } = HubHandshake.start(hubOptions(ids));
    const wireHub = Handshake.decode(Handshake.encode(message).finish());
    const reply = ClientHandshake.respond(clientOptions(ids), wireHub);
    const hubSession = hs.finish(Handshake.decode(Handshake.encode(reply.message).finish()));
    assert.deepEqual(reply.session.open(hubSession.seal(heartbeat)).heartbeat, heartbeat.heartbeat);
  });

  it("client rejects hub outside allowed hubs", () => {
    const { message } = HubHandshake.start(hubOptions(ids, { certChainDer: ids.rogueHub.chainDer, privateKey: ids.rogueHub.privateKey }));
    assert.throws(() => ClientHandshake.respond(clientOptions(ids), message), { code: "ERR_SESSION_HUB_NOT_ALLOWED" });
  });

  it("client rejects session for another target", () => {
    const { message } = HubHandshake.start(hubOptions(ids, { targetSpiffeId: ids.otherClient.spiffeId }));
    assert.throws(() => ClientHandshake.respond(clientOptions(ids), message), { code: "ERR_SESSION_WRONG_TARGET" });
  });

  it("hub detects re-routed session", () => {
    // The relay hands the hub's message to site-2 instead of site-1, and
    // site-2 skips its own target check (misconfigured or hostile).
    const { message, hs } = HubHandshake.start(hubOptions(ids));
    const wrongClient = clientOptions(ids, { certChainDer: ids.otherClient.chainDer, privateKey: ids.otherClient.privateKey });
    const reply = ClientHandshake.respond(wrongClient, message);
    assert.throws(() => hs.finish(reply.message), { code: "ERR_SESSION_WRONG_PEER" });
  });

  it("client rejects hub clock ahead", () => {
    const hubClock = new TestClock();
    const clientClock = new TestClock(hubClock.nowMs - 31_000);
    const { message } = HubHandshake.start(hubOptions(ids, { now: hubClock.now }));
    assert.throws(() => ClientHandshake.respond(clientOptions(ids, { now: clientClock.now }), message), { code: "ERR_SESSION_CLOCK_SKEW", message: /31000 ms ahead/ });
  });

  it("hub rejects client clock behind", () => {
    const hubClock = new TestClock();
    const clientClock = new TestClock(hubClock.nowMs);
    const { message, hs } = HubHandshake.start(hubOptions(ids, { now: hubClock.now }));
    hubClock.advance(45_000);
    clientClock.advance(-1_000);
    const relaxedClient = clientOptions(ids, { now: clientClock.now });
    const reply = ClientHandshake.respond(relaxedClient, message);
    assert.throws(() => hs.finish(reply.message), { code: "ERR_SESSION_CLOCK_SKEW", message: /46000 ms behind/ });
  });

  it("accepts skew within configured bound", () => {
    const hubClock = new TestClock();
    const clientClock = new TestClock(hubClock.nowMs + 50_000);
    const { message } = HubHandshake.start(hubOptions(ids, { now: hubClock.now }));
    const reply = ClientHandshake.respond(clientOptions(ids, { now: clientClock.now, maxClockSkewMs: 60_000 }), message);
    assert.equal(reply.hubSpiffeId, ids.hub.spiffeId);
  });

  it("client rejects replayed hub message", () => {
    const cache = new HandshakeReplayCache();
    const { message } = HubHandshake.start(hubOptions(ids));
    ClientHandshake.respond(clientOptions(ids, { replayCache: cache }), message);
    assert.throws(() => ClientHandshake.respond(clientOptions(ids, { replayCache: cache }), message), { code: "ERR_SESSION_HANDSHAKE_REPLAY" });
  });

  it("rejects replay after skew window by clock", () => {
    const clock = new TestClock();
    const cache = new HandshakeReplayCache();
    const { message } = HubHandshake.start(hubOptions(ids, { now: clock.now }));
    ClientHandshake.respond(clientOptions(ids, { replayCache: cache, now: clock.now }), message);
    clock.advance(31_000);
    assert.throws(() => ClientHandshake.respond(clientOptions(ids, { replayCache: cache, now: clock.now }), message), { code: "ERR_SESSION_CLOCK_SKEW" });
  });

  it("hub rejects reply replayed into new session", () => {
    const cache = new HandshakeReplayCache();
    const first = HubHandshake.start(hubOptions(ids, { replayCache: cache }));
    const reply = ClientHandshake.respond(clientOptions(ids), first.message);
    first.hs.finish(reply.message);
    const second = HubHandshake.start(hubOptions(ids, { replayCache: cache }));
    const replayed = { ...reply.message, sessionId: second.message.sessionId };
    assert.throws(() => second.hs.finish(replayed), { code: "ERR_SESSION_BAD_SIGNATURE" });
  });

  it("client rejects swapped ephemeral key", () => {
    const { message } = HubHandshake.start(hubOptions(ids));
    const swapped = { ...message, ephemeralPublicKey: Buffer.from(nobleSuite.x25519GenerateKeyPair().publicKey) };
    assert.throws(() => ClientHandshake.respond(clientOptions(ids), swapped), { code: "ERR_SESSION_BAD_SIGNATURE" });
  });

  it("hub rejects swapped ephemeral key", () => {
    const { message, hs } = HubHandshake.start(hubOptions(ids));
    const reply = ClientHandshake.respond(clientOptions(ids), message);
    const swapped = { ...reply.message, ephemeralPublicKey: Buffer.from(nobleSuite.x25519GenerateKeyPair().publicKey) };
    assert.throws(() => hs.finish(swapped), { code: "ERR_SESSION_BAD_SIGNATURE" });
  });

  it("client rejects untrusted hub chain", () => {
    const { message } = HubHandshake.start(hubOptions(ids));
    const verifyPeer = (): never => {
      throw new Error("unknown issuer");
    };
    assert.throws(() => ClientHandshake.respond(clientOptions(ids, { verifyPeer }), message), { code: "ERR_SESSION_PEER_INVALID" });
  });

  it("rejects unsupported version", () => {
    const { message } = HubHandshake.start(hubOptions(ids));
    assert.throws(() => ClientHandshake.respond(clientOptions(ids), { ...message, version: 2 }), { code: "ERR_SESSION_VERSION_UNSUPPORTED" });
  });

  it("rejects short nonce", () => {
    const { message } = HubHandshake.start(hubOptions(ids));
    assert.throws(() => ClientHandshake.respond(clientOptions(ids), { ...message, nonce: Buffer.alloc(8) }), { code: "ERR_SESSION_HANDSHAKE_MALFORMED" });
  });

  it("rejects client role from hub", () => {
    const { message } = HubHandshake.start(hubOptions(ids));
    assert.throws(() => ClientHandshake.respond(clientOptions(ids), { ...message, role: Role.ROLE_CLIENT }), { code: "ERR_SESSION_HANDSHAKE_MALFORMED" });
  });

  it("hub rejects reply for other session", () => {
    const first = HubHandshake.start(hubOptions(ids));
    const second = HubHandshake.start(hubOptions(ids));
    const reply = ClientHandshake.respond(clientOptions(ids), second.message);
    assert.throws(() => first.hs.finish(reply.message), { code: "ERR_SESSION_HANDSHAKE_MALFORMED" });
  });

  it("finish twice throws TypeError", () => {
    const { message, hs } = HubHandshake.start(hubOptions(ids));
    hs.finish(ClientHandshake.respond(clientOptions(ids), message).message);
    assert.throws(() => hs.finish(ClientHandshake.respond(clientOptions(ids), message).message), TypeError);
  });

  it("checks signature before key agreement", () => {
    const { message, hs } = HubHandshake.start(hubOptions(ids));
    const reply = ClientHandshake.respond(clientOptions(ids), message);
    // A relay cannot re-sign, so a low-order key it injects fails the signature first.
    assert.throws(() => hs.finish({ ...reply.message, ephemeralPublicKey: Buffer.alloc(32) }), { code: "ERR_SESSION_BAD_SIGNATURE" });
  });

  it("noble client talks to native hub", () => {
    const { hub, client } = establishPair(ids, { clientSuite: nobleSuite });
    assert.deepEqual(client.open(hub.seal(heartbeat)).heartbeat, heartbeat.heartbeat);
    assert.deepEqual(hub.open(client.seal(heartbeat)).heartbeat, heartbeat.heartbeat);
  });
});
