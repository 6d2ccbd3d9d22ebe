import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { pemToDerList } from "../../services/core/identity/index.js";
import { ClientHandshake, HandshakeReplayCache } from "../../services/core/session/index.js";
import { loadCredentials } from "../../services/core/workload/credentials.js";
import type { HubStream } from "../../services/relay/relay-core.js";
import { OPERATOR_TD, TransportFixture, rejection, runQuery, waitFor, type EnrolledClient } from "./fixture.js";

describe("session peer identity", () => {
  let fixture: TransportFixture;
  let acme: EnrolledClient;
  let other: EnrolledClient;

  before(async () => {
    fixture = await TransportFixture.start();
    acme = await fixture.enroll("acme", "/client/site-1");
    other = await fixture.enroll("globex", "/client/site-9");
  });

  after(async () => {
    await fixture.close();
  });

  async function startBoth(overrides: Record<string, unknown> = {}): Promise<void> {
    fixture.startClient(acme.identityDir, overrides);
    fixture.startClient(other.identityDir);
    await waitFor("both clients registered", () => fixture.relays[0].core.listClients().length === 2);
  }

  afterEach(async () => {
    for (const client of fixture.clients.splice(0)) await client.running.stop();
    await waitFor("streams removed", () => fixture.relays[0].core.listClients().length === 0);
  });

  it("relay rejects non-hub caller", async () => {
    await startBoth();
    const error = await rejection(runQuery(fixture.connector({ name: "reports" }), acme.spiffeId));

    assert.match(error.message, /ERR_NOT_A_HUB/);
    assert.equal(fixture.clients[0].running.endpoint.counters.handshakesAccepted, 0);
  });

  it("client rejects hub outside allowed_hubs", async () => {
    await startBoth({ allowed_hubs: ["/service/other-hub"] });
    const error = await rejection(runQuery(fixture.connector(), acme.spiffeId));

    assert.match(error.message, /ERR_SESSION_HUB_NOT_ALLOWED/);
    assert.equal(fixture.clients[0].running.endpoint.counters.handshakesRejected, 1);
    assert.equal(fixture.clients[0].runner.ran.length, 0);
  });

  it("misrouted session refused by other client", async () => {
    await startBoth();
    const core = fixture.relays[0].core;
    const openSession = core.openSession.bind(core);
    core.openSession = (hub, _clientSpiffeId, sessionId) => openSession(hub, other.spiffeId, sessionId);
    try {
      const error = await rejection(runQuery(fixture.connector(), acme.spiffeId));

      assert.match(error.message, /ERR_SESSION_WRONG_TARGET/);
      assert.equal(fixture.clients[1].running.endpoint.counters.handshakesRejected, 1);
    } finally {
      core.openSession = openSession;
    }
  });

  it("colluding client detected by hub", async () => {
    await startBoth();
    // The relay routes the session to another enrolled client that answers
    // as if it were the target; only its certificate can give it away.
    const colluder = loadCredentials(other.identityDir);
    const core = fixture.relays[0].core;
    const openSession = core.openSession.bind(core);
    const fromHub = core.fromHub.bind(core);
    let hubStream: HubStream | undefined;
    core.openSession = (hub, _clientSpiffeId, sessionId) => {
      hubStream = hub;
      return openSession(hub, other.spiffeId, sessionId);
    };
    core.fromHub = (sessionKey, frame) => {
      if (frame.handshake === undefined) return fromHub(sessionKey, frame);
      const { message } = ClientHandshake.respond(
        {
          certChainDer: pemToDerList(colluder.certChainPem),
          privateKey: createPrivateKey(colluder.privateKeyPem),
          verifyPeer: (chainDer) => ({ spiffeId: `spiffe://${OPERATOR_TD}/service/hub`, publicKey: new X509Certificate(chainDer[0]).publicKey, serial: "0" }),
          replayCache: new HandshakeReplayCache(),
          selfSpiffeId: frame.handshake.targetSpiffeId,
          isAllowedHub: () => true,
        },
        frame.handshake,
      );
      hubStream!.send({ frame: { sessionId: frame.sessionId, handshake: message } });
    };
    try {
      const error = await rejection(runQuery(fixture.connector(), acme.spiffeId));

      assert.match(error.message, /ERR_SESSION_WRONG_PEER/);
      assert.equal(fixture.clients[0].runner.ran.length, 0);
    } finally {
      core.openSession = openSession;
      core.fromHub = fromHub;
    }
  });
});
