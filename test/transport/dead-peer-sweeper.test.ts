import { strict as assert } from "node:assert";
import { DeadPeerSweeper } from "../../services/relay/dead-peer-sweeper.js";
import { waitUntil } from "../revocation/redis-server.js";

describe("dead-peer sweeper", () => {
  it("closes only silent peers", async () => {
    let nowMs = 0;
    const sweeper = new DeadPeerSweeper({ deadPeerTimeoutMs: 400, now: () => nowMs });
    const deaths: string[] = [];
    const silent = { lastSeenMs: 0, onDead: (silentMs: number) => deaths.push(`silent after ${silentMs}`) };
    const active = { lastSeenMs: 0, onDead: () => deaths.push("active") };
    sweeper.watch(silent);
    sweeper.watch(active);

    nowMs = 1000;
    active.lastSeenMs = 900;
    await waitUntil("the silent peer to be closed", () => deaths.length > 0, 5000);
    await new Promise((resolve) => setTimeout(resolve, sweeper.periodMs * 2));
    sweeper.unwatch(active);

    assert.deepEqual(deaths, ["silent after 1000"]);
  });
});
