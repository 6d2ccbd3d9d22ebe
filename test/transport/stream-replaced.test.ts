import assert from "node:assert/strict";
import { RelayLink, REPLACEMENTS_BEFORE_LONG_BACKOFF } from "../../services/client/relay-link.js";
import { TransportFixture, waitFor, type EnrolledClient, type FixtureClient } from "./fixture.js";

const BACKOFF_MAX_MS = 1000;

/** Parsed log lines of a client whose message starts with `prefix`. */
function entriesStartingWith(client: FixtureClient, prefix: string): Record<string, unknown>[] {
  return client.log.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => String(entry.message).startsWith(prefix));
}

describe("replaced relay stream", () => {
  let fixture: TransportFixture;
  let acme: EnrolledClient;
  let first: FixtureClient;
  let second: FixtureClient;

  before(async () => {
    fixture = await TransportFixture.start({ relays: 1 });
    acme = await fixture.enroll("acme", "/client/site-1");
    const reconnect = { initial_ms: 50, max_ms: BACKOFF_MAX_MS };
    first = fixture.startClient(acme.identityDir, { reconnect });
    await waitFor("first client connected", () => first.running.links[0]!.state === "connected");
    second = fixture.startClient(acme.identityDir, { reconnect });
    await waitFor(
      "both clients replaced several times in a row",
      () => [first, second].every((client) => entriesStartingWith(client, "relay replaced this stream").length > REPLACEMENTS_BEFORE_LONG_BACKOFF),
      20_000,
    );
  });

  after(async () => {
    await fixture.close();
  });

  it("logs a warning naming the identity", () => {
    const [entry] = entriesStartingWith(first, "relay replaced this stream");

    assert.equal(entry?.level, "warn");
    assert.equal(entry?.message, `relay replaced this stream: another client is running with the same identity ${acme.spiffeId}; stop one of them`);
    assert.equal(entry?.relay_id, fixture.relays[0]!.relayId);
  });

  it("counts consecutive replacements", () => {
    const counts = entriesStartingWith(first, "relay replaced this stream").map((entry) => entry.consecutive_replacements);

    assert.deepEqual(counts.slice(0, REPLACEMENTS_BEFORE_LONG_BACKOFF), [1, 2, 3]);
  });

  it("backs off longer after repeated replacements", () => {
    const delays = entriesStartingWith(first, "reconnecting to relay after backoff")
      .filter((entry) => Number(entry.consecutive_replacements) >= REPLACEMENTS_BEFORE_LONG_BACKOFF)
      .map((entry) => Number(entry.delay_ms));

    assert.ok(delays.length > 0, "no reconnect after repeated replacements was logged");
    for (const delay of delays) assert.ok(delay >= BACKOFF_MAX_MS / 2 && delay < BACKOFF_MAX_MS, `delay ${delay} ms`);
  });
});

describe("replacement backoff delay", () => {
  it("uses full jitter below the threshold", () => {
    assert.equal(RelayLink.replacedDelayMs(REPLACEMENTS_BEFORE_LONG_BACKOFF - 1, 0, 100, 30_000, () => 0), 0);
  });

  it("stays in the upper half of the maximum", () => {
    assert.equal(RelayLink.replacedDelayMs(REPLACEMENTS_BEFORE_LONG_BACKOFF, 0, 100, 30_000, () => 0), 15_000);
    assert.equal(RelayLink.replacedDelayMs(REPLACEMENTS_BEFORE_LONG_BACKOFF, 0, 100, 30_000, () => 0.999), 29_985);
  });
});
