import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { credentialPaths } from "../../services/ca/credentials.js";
import type { RunningRelay } from "../../services/relay/server.js";
import { OPERATOR_TD } from "../ca/fixture.js";
import { RevocationFixture } from "./fixture.js";
import { operatorBundle, startTestRelay, TestClientLink } from "./relay-client.js";
import { waitUntil } from "./redis-server.js";

const EWII = fileURLToPath(new URL("../../services/cli/main.ts", import.meta.url));
/** An address the CLI never dials in this test; the endpoints file requires one per service. */
const UNUSED_ADDRESS = "127.0.0.1:9";

interface RevokeOutput {
  revocation: { sequence: string | number };
  acks: Array<{ node_id: string; role: string; streams_closed: number; sessions_closed: number }>;
}

describe("ewii revoke with Redis", function () {
  this.timeout(60_000);
  let fixture: RevocationFixture;
  const relays: RunningRelay[] = [];
  const links: TestClientLink[] = [];

  afterEach(async () => {
    for (const link of links.splice(0)) link.stop();
    for (const relay of relays.splice(0)) await relay.close();
    await fixture?.dispose();
  });

  it("prints close counts per relay", async () => {
    fixture = await RevocationFixture.start();
    await fixture.ca.createTenant("acme");
    const enrolled = await fixture.ca.enroll(await fixture.ca.token("acme", "/client/site-1"));
    for (const id of ["relay-a", "relay-b"]) relays.push(await startTestRelay(fixture.ca, fixture.ca_running!.port, id, { redisUrl: fixture.redis.url }));
    for (const relay of relays) links.push(new TestClientLink(`127.0.0.1:${relay.port}`, enrolled.tls, operatorBundle(fixture.ca)));
    await waitUntil("the client on every relay", () => relays.every((relay) => relay.core.listClients().some((stream) => stream.spiffeId === enrolled.spiffeId)));
    const endpointsFile = join(fixture.ca.dataDir, "endpoints.json");
    writeFileSync(endpointsFile, JSON.stringify({ operator_trust_domain: OPERATOR_TD, ca: `127.0.0.1:${fixture.ca_running!.port}`, policy: UNUSED_ADDRESS, audit: UNUSED_ADDRESS, hub: UNUSED_ADDRESS, relays: relays.map((relay) => relay.address) }));

    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", EWII, "--endpoints", endpointsFile, "--credentials", credentialPaths(fixture.ca.dataDir, "alice").dir, "--json", "revoke", "--spiffe-id", enrolled.spiffeId, "--reason", "test", "--redis", fixture.redis.url, "--wait-ms", "1500"],
      { env: { ...process.env, EWII_HOME: fixture.ca.dataDir } },
    );
    const output = JSON.parse(stdout) as RevokeOutput;
    const byNode = new Map(output.acks.map((ack) => [ack.node_id, ack]));

    assert.equal(Number(output.revocation.sequence), 1);
    assert.deepEqual([...byNode.keys()].sort(), ["relay-a", "relay-b"]);
    assert.equal(byNode.get("relay-a")?.role, "relay");
    assert.equal(byNode.get("relay-a")?.streams_closed, 1);
    assert.equal(byNode.get("relay-b")?.streams_closed, 1);
  });
});
