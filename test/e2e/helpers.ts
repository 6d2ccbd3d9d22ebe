import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import type { Value } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { enrollWithToken } from "../../services/ca/index.js";
import { caClient, hubClient, type CliContext } from "../../services/cli/connect.js";
import { collectQuery, type QueryResult } from "../../services/cli/commands/query.js";
import { loadClientConfig } from "../../services/client/config.js";
import { createQueryHandler } from "../../services/client/query-runner.js";
import { startClient, type RunningClient } from "../../services/client/runtime.js";
import type { QueryRunner } from "../../services/client/session-endpoint.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { generateKeyPair, privateKeyToPem } from "../../services/core/identity/index.js";
import { silentLogger } from "../../services/core/log.js";
import { writeCredentialFiles } from "../../services/core/workload/credentials.js";
import { DEMO_POLICY_FILE, startDevStack, waitFor, type DevStack } from "../../services/dev/stack.js";
import { parsePolicy } from "../../services/policy/document.js";

/** Starts the whole product in a temporary home on free ports. */
export async function startTestStack(options: { relays?: number } = {}): Promise<DevStack & { cleanup(): Promise<void> }> {
  const home = mkdtempSync(join(tmpdir(), "ewii-e2e-"));
  const stack = await startDevStack({ home, basePort: 0, logger: silentLogger(), relays: options.relays ?? 1 });
  return {
    ...stack,
    async cleanup() {
      await stack.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

export interface ExtraClient {
  spiffeId: string;
  client: RunningClient;
  handler: ReturnType<typeof createQueryHandler>;
  stop(): Promise<void>;
}

/**
 * Enrolls and starts another client of tenant acme with its own dataset
 * configuration. `wrap` can replace the query runner, for example to tamper
 * with results.
 */
export async function addClient(stack: DevStack, options: { path: string; dataset: Record<string, unknown>; wrap?: (runner: QueryRunner) => QueryRunner }): Promise<ExtraClient> {
  const dir = join(stack.home, "clients", options.path.replace(/\//g, "_"));
  mkdirSync(dir, { recursive: true });
  const ca = caClient(stack.admin);
  const token = await callUnary(ca.createJoinToken.bind(ca), { tenant: "acme", spiffeIdPath: options.path, ttlSeconds: 0 });
  ca.close();
  const keyPair = generateKeyPair();
  const enrolled = await enrollWithToken({ caAddress: stack.endpoints.ca, token: token.token, keyPair });
  writeCredentialFiles(join(dir, "identity"), { svid: enrolled.certChainPem, key: privateKeyToPem(keyPair.privateKey), operatorBundle: enrolled.operatorBundle.pem, tenantBundle: enrolled.tenantBundle.pem });

  const file = join(dir, "client.yaml");
  writeFileSync(file, stringifyYaml({ identity_dir: join(dir, "identity"), ca: stack.endpoints.ca, relays: stack.endpoints.relays, heartbeat_interval_ms: 500, dead_peer_timeout_ms: 3000, datasets: { chinook: options.dataset } }));
  const config = loadClientConfig(file);
  const handler = createQueryHandler(config, silentLogger());
  const runner = options.wrap === undefined ? handler : options.wrap(handler);
  const client = startClient(config, { logger: silentLogger(), runner, onRenewed: () => handler.signer.reload() });
  await waitFor(`client ${enrolled.spiffeId} to connect`, () => stack.relays.every((relay) => relay.core.listClients().some((stream) => stream.spiffeId === enrolled.spiffeId)));
  return {
    spiffeId: enrolled.spiffeId,
    client,
    handler,
    async stop() {
      await client.stop();
      await handler.close();
    },
  };
}

/** The demo catalog's queries for one engine, as a client allow-list (every query but those excluded). */
export function catalogQueries(engine: "sqlite" | "postgres", exclude: string[] = []): Record<string, { sql: string; params: Record<string, { type: string }> }> {
  const document = parsePolicy(readFileSync(DEMO_POLICY_FILE, "utf8"), "demo.yaml");
  const queries: Record<string, { sql: string; params: Record<string, { type: string }> }> = {};
  for (const [id, query] of Object.entries(document.catalog.chinook.queries)) {
    const sql = query.sql[engine];
    if (sql === undefined || exclude.includes(id)) continue;
    queries[id] = { sql, params: Object.fromEntries(Object.entries(query.params).map(([name, spec]) => [name, { type: spec.type }])) };
  }
  return queries;
}

/** Runs a catalog query through the hub as the demo caller. */
export function hubQuery(stack: DevStack, client: string, queryId: string, params: Record<string, Value> = {}, as: CliContext = stack.caller): Promise<QueryResult> {
  const hub = hubClient(as);
  return collectQuery(hub, { tenant: "acme", client, dataset: "chinook", queryId, params }, 30_000).finally(() => hub.close());
}

/** Renders result cells as strings so rows from the hub and from a driver compare equal. */
export function cellsText(rows: unknown[][]): (string | null)[][] {
  return rows.map((row) => row.map((cell) => (cell === null || cell === undefined ? null : String(cell))));
}
