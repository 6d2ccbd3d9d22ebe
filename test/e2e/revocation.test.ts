import { strict as assert } from "node:assert";
import { caClient } from "../../services/cli/connect.js";
import { errorCodeOf } from "../../services/core/errors.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { waitFor } from "../../services/dev/stack.js";
import { DEMO_CLIENT_PATH } from "../../services/dev/demo-client.js";
import { hubQuery, startTestStack } from "./helpers.js";

const DEMO_QUERY = "revenue_by_country";

describe("revocation end to end", function () {
  this.timeout(120_000);
  let stack: Awaited<ReturnType<typeof startTestStack>>;

  beforeEach(async () => {
    stack = await startTestStack({ relays: 2 });
  });

  afterEach(async () => {
    await stack?.cleanup();
  });

  async function revoke(target: { spiffeId: string } | { serial: string }): Promise<number> {
    const ca = caClient(stack.admin);
    try {
      const response = await callUnary(ca.revoke.bind(ca), { target, reason: "end-to-end test" });
      return Number(response.revocation!.sequence);
    } finally {
      ca.close();
    }
  }

  it("client revocation closes streams and session", async () => {
    await hubQuery(stack, DEMO_CLIENT_PATH, DEMO_QUERY);
    const sessionsBefore = stack.hub.connector.connections().filter((connection) => connection.clientSpiffeId === stack.clientSpiffeId).length;
    const relayClosedBefore = stack.relays.map((relay) => relay.revocationCounters().streamsClosed);

    const sequence = await revoke({ spiffeId: stack.clientSpiffeId });
    await waitFor("every relay and the hub to apply the revocation", () => stack.relays.every((relay) => relay.revocationSequence() >= sequence) && stack.hub.revocationSequence() >= sequence);
    await waitFor("the client streams to close", () => stack.relays.every((relay) => !relay.core.listClients().some((stream) => stream.spiffeId === stack.clientSpiffeId)));
    const sessionsAfter = stack.hub.connector.connections().filter((connection) => connection.clientSpiffeId === stack.clientSpiffeId).length;

    assert.equal(sessionsBefore, 1);
    assert.deepEqual(
      stack.relays.map((relay, i) => relay.revocationCounters().streamsClosed - relayClosedBefore[i]),
      stack.relays.map(() => 1),
    );
    assert.equal(sessionsAfter, 0);
    assert.ok(stack.hub.revocationCounters().sessionsClosed >= 1, `the hub closed ${stack.hub.revocationCounters().sessionsClosed} sessions`);
    await assert.rejects(hubQuery(stack, DEMO_CLIENT_PATH, DEMO_QUERY), (err: unknown) => {
      // NOTE: the hub does not check the client's identity against its deny
      // set before routing, so the refusal names the missing streams, not
      // the revocation.
      assert.equal(errorCodeOf(err), "ERR_CLIENT_UNREACHABLE");
      return true;
    });
  });

  it("caller serial revocation refuses queries", async () => {
    await hubQuery(stack, DEMO_CLIENT_PATH, DEMO_QUERY);

    const sequence = await revoke({ serial: stack.caller.credentials.serial });
    await waitFor("the hub to apply the revocation", () => stack.hub.revocationSequence() >= sequence);

    await assert.rejects(hubQuery(stack, DEMO_CLIENT_PATH, DEMO_QUERY), (err: unknown) => {
      assert.equal(errorCodeOf(err), "ERR_REVOKED");
      return true;
    });
  });
});
