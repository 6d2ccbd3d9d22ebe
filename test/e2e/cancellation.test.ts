import { strict as assert } from "node:assert";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { status } from "@grpc/grpc-js";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import { auditClient, policyClient } from "../../services/cli/connect.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { DEMO_POLICY_FILE, waitFor } from "../../services/dev/stack.js";
import { applyPolicyFile } from "../../services/policy/apply-cli.js";
import { CHINOOK_SQLITE } from "../client-query/helpers.js";
import { addClient, catalogQueries, hubQuery, startTestStack, type ExtraClient } from "./helpers.js";
import { collectQuery } from "../../services/cli/commands/query.js";
import { hubClient } from "../../services/cli/connect.js";

// Counts to a billion: minutes of work, so only cancellation can end it early.
const SLOW_SQL = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) AS n FROM c";

describe("deadline propagation", function () {
  this.timeout(120_000);
  let stack: Awaited<ReturnType<typeof startTestStack>>;
  let slow: ExtraClient;

  before(async () => {
    stack = await startTestStack();
    const policy = parseYaml(readFileSync(DEMO_POLICY_FILE, "utf8")) as { catalog: { chinook: { queries: Record<string, unknown> } } };
    policy.catalog.chinook.queries.slow_count = { description: "A deliberately slow statement.", sql: { sqlite: SLOW_SQL } };
    const file = join(stack.home, "policy-with-slow.yaml");
    writeFileSync(file, stringifyYaml(policy));
    const client = policyClient(stack.admin);
    await applyPolicyFile(file, client, { print: () => undefined });
    client.close();
    await waitFor("the hub to load the new policy", () => stack.hub.policy.current()?.queries.has("chinook\u0000slow_count") === true);
    const queries = { ...catalogQueries("sqlite", ["customer_emails"]), slow_count: { sql: SLOW_SQL, params: {} } };
    slow = await addClient(stack, { path: "/client/site-slow", dataset: { engine: "sqlite", path: CHINOOK_SQLITE, statement_timeout_ms: 600_000, queries } });
  });

  after(async () => {
    await slow?.stop();
    await stack?.cleanup();
  });

  it("caller deadline stops the statement", async () => {
    const hub = hubClient(stack.caller);
    await assert.rejects(
      collectQuery(hub, { tenant: "acme", client: "/client/site-slow", dataset: "chinook", queryId: "slow_count", params: {} }, 1_500),
      (err: { code?: number }) => {
        assert.equal(err.code, status.DEADLINE_EXCEEDED);
        return true;
      },
    );
    hub.close();
    await waitFor("the client to stop the statement", () => slow.client.endpoint.inFlightQueries === 0, 10_000);

    const audit = auditClient(stack.admin);
    await waitFor("the query.failed record", async () => {
      const response = await callUnary(audit.query.bind(audit), { tenant: "acme", principal: "", client: slow.spiffeId, decision: "", limit: 100, afterSequence: 0n });
      return response.records.some((record: AuditRecord) => record.event === "query.failed" && record.queryId === "slow_count");
    });
    audit.close();
  });

  it("caller cancel stops the statement", async () => {
    const hub = hubClient(stack.caller);
    const call = hub.executeQuery({ tenant: "acme", client: "/client/site-slow", dataset: "chinook", queryId: "slow_count", params: {} });
    const ended = new Promise<number | undefined>((resolve) => call.on("error", (err: { code?: number }) => resolve(err.code)));
    call.on("data", () => undefined);
    await waitFor("the client to start the statement", () => slow.client.endpoint.inFlightQueries === 1, 10_000);

    call.cancel();

    assert.equal(await ended, status.CANCELLED);
    await waitFor("the client to stop the statement", () => slow.client.endpoint.inFlightQueries === 0, 10_000);
    hub.close();
  });

  it("client serves again after the cancel", async () => {
    const result = await hubQuery(stack, "/client/site-slow", "customer_invoices", { customer_id: { intValue: 3n } });
    assert.ok(result.rows.length > 0);
  });
});
