import { strict as assert } from "node:assert";
import { REDIS_RECONNECT_MAX_DELAY_MS, reconnectDelayMs } from "../../services/core/revocation/redis-connection.js";

describe("redis reconnect delay", () => {
  it("grows by 10 ms per attempt", () => {
    assert.deepEqual([1, 2, 3, 4, 5].map(reconnectDelayMs), [10, 20, 30, 40, 50]);
  });

  it("stays at the cap after many attempts", () => {
    assert.equal(reconnectDelayMs(10_000), REDIS_RECONNECT_MAX_DELAY_MS);
  });
});
