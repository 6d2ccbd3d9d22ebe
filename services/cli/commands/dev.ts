import { join } from "node:path";
import type { Command } from "commander";
import type { AuditRecord } from "../../../gen/ewii/audit/v1/audit.js";
import type { Value } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import { formatRecord } from "../../audit/index.js";
import { errorCodeOf } from "../../core/errors.js";
import { callUnary } from "../../core/grpc/index.js";
import { createLogger } from "../../core/log.js";
import { startDevStack, type DevStack } from "../../dev/stack.js";
import { DEMO_CLIENT_PATH, DEMO_TENANT } from "../../dev/demo-client.js";
import { auditClient, hubClient } from "../connect.js";
import { homeDir } from "../home.js";
import { escapeControlCharacters, printTable, rowCountText } from "../output.js";
import type { GlobalOptions } from "../connect.js";
import { collectQuery } from "./query.js";
import { runUntilSignal } from "./serve.js";

/** One step of the demo: a catalog query with its parameters and what it shows. */
export interface DemoQuery {
  title: string;
  queryId: string;
  params: Record<string, Value>;
}

export const DEMO_QUERIES: DemoQuery[] = [
  { title: "Revenue by country", queryId: "revenue_by_country", params: {} },
  { title: "Invoices of customer 12", queryId: "customer_invoices", params: { customer_id: { intValue: 12n } } },
  { title: "Top 5 Rock tracks by sales", queryId: "top_tracks_by_genre", params: { genre: { stringValue: "Rock" }, limit: { intValue: 5n } } },
];

/** Queries that must fail, and why: one refused by policy, one by the client's allow-list. */
export const REJECTED_QUERIES: DemoQuery[] = [
  { title: "Employee list (the policy denies it)", queryId: "employee_list", params: {} },
  { title: "Customer e-mails (the policy allows it, the client's allow-list does not)", queryId: "customer_emails", params: {} },
];

const DATASET = "chinook";
const MAX_DEMO_ROWS_SHOWN = 12;

function write(line = ""): void {
  process.stdout.write(line + "\n");
}

/** Runs the demo queries through the hub as the internal caller and prints the results. */
export async function runDemo(stack: DevStack): Promise<{ completed: number; rejected: number }> {
  const hub = hubClient(stack.caller);
  const audit = auditClient(stack.admin);
  const before = await callUnary(audit.query.bind(audit), { limit: 0, afterSequence: 0n, tenant: "", principal: "", client: "", decision: "" });
  const firstSequence = before.records.length === 0 ? 0n : before.records[before.records.length - 1].sequence;
  let completed = 0;
  let rejected = 0;

  for (const demo of DEMO_QUERIES) {
    write(`\n== ${demo.title}  (${demo.queryId}, as ${stack.caller.credentials.spiffeId.toString()})`);
    const result = await collectQuery(hub, { tenant: DEMO_TENANT, client: DEMO_CLIENT_PATH, dataset: DATASET, queryId: demo.queryId, params: demo.params }, 30_000);
    printTable(result.columns, result.rows.slice(0, MAX_DEMO_ROWS_SHOWN));
    const summary = result.summary;
    const more = result.rows.length > MAX_DEMO_ROWS_SHOWN ? ` (first ${MAX_DEMO_ROWS_SHOWN} shown)` : "";
    write(`${rowCountText(summary?.rowCount ?? result.rows.length)}${more}; allowed by rule "${summary?.rule}" (policy v${summary?.policyVersion}); client signature verified; audit record #${summary?.auditSequence}; ${summary?.elapsedMs} ms`);
    completed++;
  }

  for (const demo of REJECTED_QUERIES) {
    write(`\n== ${demo.title}`);
    try {
      await collectQuery(hub, { tenant: DEMO_TENANT, client: DEMO_CLIENT_PATH, dataset: DATASET, queryId: demo.queryId, params: demo.params }, 30_000);
      write("unexpected: the query ran");
    } catch (err) {
      rejected++;
      const details = (err as { details?: string }).details ?? String(err);
      const code = errorCodeOf(err) ?? "error";
      write(`refused: ${escapeControlCharacters(details.startsWith(code) ? details : `${code}: ${details}`)}`);
    }
  }

  const after = await callUnary(audit.query.bind(audit), { limit: 100, afterSequence: firstSequence, tenant: "", principal: "", client: "", decision: "" });
  write(`\n== Audit records written by this demo (ewii audit query --after ${firstSequence})`);
  for (const record of after.records as AuditRecord[]) write(formatRecord(record));
  const verify = await callUnary(audit.verify.bind(audit), { fromSequence: 0n, toSequence: 0n });
  write(`\naudit chain: ${verify.ok ? "verified" : `FAILED at ${verify.firstBadSequence}: ${verify.problem} ${verify.detail}`} (${verify.checked} entries)`);
  hub.close();
  audit.close();
  return { completed, rejected };
}

function printTryIt(stack: DevStack): void {
  const home = stack.home;
  write(`\nEwii is running. Service logs: ${join(home, "logs", "ewii.log")}`);
  printTable(
    ["service", "address", "SPIFFE ID"],
    [
      ["ca", stack.endpoints.ca, "spiffe://operator.example/service/ca"],
      ["policy", stack.endpoints.policy, "spiffe://operator.example/service/policy"],
      ["audit", stack.endpoints.audit, "spiffe://operator.example/service/audit"],
      ...stack.endpoints.relays.map((relay) => ["relay", relay, "spiffe://operator.example/service/relay"]),
      ["hub", stack.endpoints.hub, "spiffe://operator.example/service/hub"],
    ],
  );
  write(`\nTry, in another terminal (EWII_HOME=${home}):`);
  write(`  ./bin/ewii.js query --tenant acme --client ${DEMO_CLIENT_PATH} --dataset ${DATASET} customer_invoices customer_id=7`);
  write(`  ./bin/ewii.js clients`);
  write(`  ./bin/ewii.js audit tail`);
  write(`  ./bin/ewii.js tenant list`);
  const admin = join(home, "credentials", "admin");
  const hubPort = stack.endpoints.hub.split(":").pop();
  write(`  grpcurl -cert ${admin}/svid.pem -key ${admin}/key.pem -cacert ${admin}/bundle.pem localhost:${hubPort} list`);
  write("Stop with Ctrl-C.");
}

export function registerDevCommand(program: Command, globals: () => GlobalOptions): void {
  program
    .command("dev")
    .description("start every operator service and a demo client on embedded defaults, run the demo queries, and keep serving")
    .option("--data-dir <dir>", "home folder for state and credentials (default .ewii/dev)")
    .option("--base-port <port>", "first of five consecutive ports for ca, policy, audit, relay and hub; 0 picks free ports", "7401")
    .option("--once", "exit after the demo instead of serving")
    .option("--log-level <level>", "service log level", "info")
    .action(async (options: { dataDir?: string; basePort: string; once?: boolean; logLevel: string }) => {
      const home = homeDir(options.dataDir ?? globals().home);
      const logFile = join(home, "logs", "ewii.log");
      const logger = createLogger({ level: options.logLevel, file: logFile, defaultMeta: { service: "dev" } });
      write(`Starting Ewii in ${home} (service logs in ${logFile}) ...`);
      const stack = await startDevStack({ home, basePort: Number(options.basePort), logger });
      write(`CA, policy, audit, relay and hub are up over mTLS; demo client ${stack.clientSpiffeId} is connected.`);
      try {
        await runDemo(stack);
      } catch (err) {
        await stack.close();
        throw err;
      }
      if (options.once === true) {
        await stack.close();
        return;
      }
      printTryIt(stack);
      await runUntilSignal(logger, () => stack.close());
    });
}
