import assert from "node:assert/strict";
import type { RoutedFrame } from "../../gen/ewii/relay/v1/relay.js";
import { DEFAULT_REPLAY_WINDOW_SIZE } from "../../services/core/session/index.js";
import type { SessionConnector } from "../../services/hub/connector.js";
import { RelayTap, TransportFixture, queryRequest, runQuery, waitFor, type EnrolledClient, type FixtureClient } from "./fixture.js";

/** Deep copy of a frame whose ciphertext the test may alter. */
function copyOf(frame: RoutedFrame): RoutedFrame {
  return { ...frame, sealed: { ...frame.sealed!, ciphertext: Buffer.from(frame.sealed!.ciphertext) } };
}

describe("relay frame tampering", () => {
  let fixture: TransportFixture;
  let tap: RelayTap;
  let acme: EnrolledClient;
  let client: FixtureClient;
  let connector: SessionConnector;

  before(async () => {
    fixture = await TransportFixture.start();
    tap = new RelayTap(fixture.relays[0].core);
    acme = await fixture.enroll("acme", "/client/site-1");
    client = fixture.startClient(acme.identityDir);
    await waitFor("client registered", () => fixture.relays[0].core.listClients().length === 1);
    connector = fixture.connector();
    await runQuery(connector, acme.spiffeId);
  });

  afterEach(() => {
    tap.onSealedFromHub = undefined;
  });

  after(async () => {
    await fixture.close();
  });

  function rejectedCodes(): string[] {
    return client.log.entries("session frame rejected").map((entry) => String(entry.error_code));
  }

  it("altered frame rejected", async () => {
    const before = client.running.endpoint.counters.framesRejected;
    tap.onSealedFromHub = (frame, forward) => {
      const altered = copyOf(frame);
      altered.sealed!.ciphertext[0] ^= 0x01;
      forward(altered);
      forward(frame);
    };

    const messages = await runQuery(connector, acme.spiffeId);

    assert.equal(messages.at(-1)?.summary?.status, "ok");
    assert.equal(client.running.endpoint.counters.framesRejected, before + 1);
    assert.equal(rejectedCodes().at(-1), "ERR_FRAME_AUTH_FAILED");
  });

  it("replayed frame rejected", async () => {
    const before = client.running.endpoint.counters.framesRejected;
    const ranBefore = client.runner.ran.length;
    tap.onSealedFromHub = (frame, forward) => {
      forward(frame);
      forward(copyOf(frame));
    };

    await runQuery(connector, acme.spiffeId);
    await waitFor("duplicate counted", () => client.running.endpoint.counters.framesRejected > before);

    assert.equal(client.running.endpoint.counters.framesRejected, before + 1);
    assert.equal(rejectedCodes().at(-1), "ERR_FRAME_REPLAYED");
    assert.equal(client.runner.ran.length, ranBefore + 1);
  });

  it("reordered frames accepted once", async () => {
    const before = client.running.endpoint.counters.framesRejected;
    const ranBefore = client.runner.ran.length;
    let held: RoutedFrame | undefined;
    tap.onSealedFromHub = (frame, forward) => {
      if (held === undefined) {
        held = frame;
        return;
      }
      forward(frame);
      forward(held);
      tap.onSealedFromHub = undefined;
    };

    const results = await Promise.all([runQuery(connector, acme.spiffeId), runQuery(connector, acme.spiffeId)]);

    assert.deepEqual(results.map((messages) => messages.at(-1)?.summary?.status), ["ok", "ok"]);
    assert.equal(client.running.endpoint.counters.framesRejected, before);
    assert.equal(client.runner.ran.length, ranBefore + 2);
  });

  it("frame older than window rejected", async () => {
    let captured: RoutedFrame | undefined;
    let deliver: ((frame: RoutedFrame) => void) | undefined;
    tap.onSealedFromHub = (frame, forward) => {
      captured ??= copyOf(frame);
      deliver ??= forward;
      forward(frame);
    };
    await runQuery(connector, acme.spiffeId);
    tap.onSealedFromHub = undefined;

    // Move the hub's sequence past the window, one query frame each.
    const batch = 256;
    for (let sent = 0; sent <= DEFAULT_REPLAY_WINDOW_SIZE; sent += batch) {
      await Promise.all(Array.from({ length: batch }, () => runQuery(connector, acme.spiffeId, queryRequest())));
    }
    const before = client.running.endpoint.counters.framesRejected;
    deliver!(captured!);
    await waitFor("old frame counted", () => client.running.endpoint.counters.framesRejected > before);

    assert.equal(client.running.endpoint.counters.framesRejected, before + 1);
    assert.equal(rejectedCodes().at(-1), "ERR_FRAME_TOO_OLD");
  });
});
