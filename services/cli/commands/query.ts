import { status } from "@grpc/grpc-js";
import type { Command } from "commander";
import type { ExecuteQueryResponse } from "../../../gen/ewii/hub/v1/hub.js";
import type { Value } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import { EwiiError, errorCodeOf } from "../../core/errors.js";
import { callUnary } from "../../core/grpc/index.js";
import { cliContext, hubClient, type GlobalOptions } from "../connect.js";
import { printTable, rowCountText } from "../output.js";
import { parseIntOption } from "./ca-admin.js";

const TYPED_PARAM = /^([A-Za-z_][A-Za-z0-9_]*)(?::(int|real|text|bool))?=(.*)$/s;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const WHOLE_NUMBER = /^-?\d+$/;
const DECIMAL_NUMBER = /^-?\d+\.\d+$/;
const REAL_NUMBER = /^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/**
 * Parses "name=value" into a typed value: whole numbers become integers,
 * decimals reals, true/false booleans, anything else text. "name:text=42"
 * forces a type. Integers must fit in int64 and reals in a finite double,
 * as the wire format carries them.
 */
export function parseParam(argument: string): [string, Value] {
  const match = TYPED_PARAM.exec(argument);
  if (match === null) throw new EwiiError("ERR_USAGE", `parameter "${argument}" must look like name=value or name:type=value (type int, real, text or bool)`);
  const [, name, type, raw] = match;
  const kind = type ?? inferredType(raw);
  switch (kind) {
    case "int": {
      if (!WHOLE_NUMBER.test(raw)) throw new EwiiError("ERR_USAGE", `parameter ${name} is typed int but "${raw}" is not a whole number`);
      const value = BigInt(raw);
      if (value < INT64_MIN || value > INT64_MAX) {
        throw new EwiiError("ERR_USAGE", `parameter ${name} is outside the int64 range (-2^63 to 2^63-1); pass a smaller number, or name:text=... if the query takes text`);
      }
      return [name, { intValue: value }];
    }
    case "real": {
      if (!REAL_NUMBER.test(raw)) throw new EwiiError("ERR_USAGE", `parameter ${name} is typed real but "${raw}" is not a number`);
      const value = Number(raw);
      if (!Number.isFinite(value)) throw new EwiiError("ERR_USAGE", `parameter ${name} is too large for a double (about ±1.8e308)`);
      return [name, { doubleValue: value }];
    }
    case "bool":
      if (raw !== "true" && raw !== "false") throw new EwiiError("ERR_USAGE", `parameter ${name} is typed bool but "${raw}" is not true or false`);
      return [name, { boolValue: raw === "true" }];
    default:
      return [name, { stringValue: raw }];
  }
}

function inferredType(raw: string): "int" | "real" | "bool" | "text" {
  if (WHOLE_NUMBER.test(raw)) return "int";
  if (DECIMAL_NUMBER.test(raw)) return "real";
  if (raw === "true" || raw === "false") return "bool";
  return "text";
}

/** Parses every "name=value" argument and rejects a name given twice. */
export function parseParams(argumentList: readonly string[]): Record<string, Value> {
  const params = new Map<string, Value>();
  for (const argument of argumentList) {
    const [name, value] = parseParam(argument);
    if (params.has(name)) throw new EwiiError("ERR_USAGE", `parameter ${name} is given more than once; pass each parameter once`);
    params.set(name, value);
  }
  // fromEntries defines own properties, so a parameter named __proto__ stays a parameter.
  return Object.fromEntries(params);
}

/** Renders a result value as table text. */
export function valueText(value: Value): string | number | bigint | boolean | null {
  if (value.nullValue === true) return null;
  if (value.intValue !== undefined) return value.intValue;
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.bytesValue !== undefined) return `0x${Buffer.from(value.bytesValue).toString("hex")}`;
  return null;
}

export interface QueryResult {
  columns: string[];
  rows: (string | number | bigint | boolean | null)[][];
  summary: ExecuteQueryResponse["summary"];
}

/** Runs ExecuteQuery and collects the whole streamed result. */
export function collectQuery(client: ReturnType<typeof hubClient>, request: { tenant: string; client: string; dataset: string; queryId: string; params: Record<string, Value> }, deadlineMs: number): Promise<QueryResult> {
  return new Promise((resolve, reject) => {
    const result: QueryResult = { columns: [], rows: [], summary: undefined };
    const call = client.executeQuery(request, { deadline: new Date(Date.now() + deadlineMs) });
    call.on("data", (response: ExecuteQueryResponse) => {
      if (response.columns !== undefined) result.columns = response.columns.names;
      if (response.rows !== undefined) for (const row of response.rows.rows) result.rows.push(row.values.map(valueText));
      if (response.summary !== undefined) result.summary = response.summary;
    });
    call.on("error", reject);
    call.on("end", () => resolve(result));
  });
}

function parsePositiveIntOption(value: string, flag: string): number {
  const parsed = parseIntOption(value, flag);
  if (parsed < 1) throw new EwiiError("ERR_USAGE", `${flag} must be at least 1, got "${value}"`);
  return parsed;
}

/**
 * Explains a deadline that expired in this process. grpc-js reports it with
 * timing details and no hint; a deadline error from the hub carries an
 * ERR_ code and is left as it is.
 */
function deadlineError(err: unknown, timeoutMs: number): EwiiError | undefined {
  const grpcCode = typeof err === "object" && err !== null && "code" in err ? err.code : undefined;
  if (grpcCode !== status.DEADLINE_EXCEEDED || errorCodeOf(err) !== undefined) return undefined;
  return new EwiiError("ERR_DEADLINE_EXCEEDED", `the query timed out after ${timeoutMs} ms (--timeout); pass a larger --timeout, or check the hub log if the hub responds slowly`, {
    status: status.DEADLINE_EXCEEDED,
    cause: err,
  });
}

export function registerQueryCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command("query <query-id> [params...]")
    .description("run a catalog query on a client's dataset through the hub")
    .requiredOption("--tenant <name>", "tenant of the client")
    .requiredOption("--client <id>", 'client SPIFFE ID or path, for example "/client/site-1"')
    .requiredOption("--dataset <name>", "dataset name")
    .option("--as <identity>", "credentials folder name under <home>/credentials to call as", "reports")
    .option("--timeout <ms>", "deadline in milliseconds, at least 1", (v) => parsePositiveIntOption(v, "--timeout"), 30_000)
    .action(async (queryId: string, params: string[], options: { tenant: string; client: string; dataset: string; as: string; timeout: number }) => {
      const parsedParams = parseParams(params);
      const context = cliContext(globals(), options.as);
      const client = hubClient(context);
      const result = await collectQuery(client, { tenant: options.tenant, client: options.client, dataset: options.dataset, queryId, params: parsedParams }, options.timeout).catch(
        (err: unknown) => {
          throw deadlineError(err, options.timeout) ?? err;
        },
      );
      if (context.json) {
        printTable(result.columns, result.rows, { json: true, jsonValue: { columns: result.columns, rows: result.rows, summary: result.summary } });
        return;
      }
      printTable(result.columns, result.rows);
      const summary = result.summary;
      if (summary !== undefined) {
        process.stdout.write(`${rowCountText(summary.rowCount)}, rule "${summary.rule}" (policy v${summary.policyVersion}), audit #${summary.auditSequence}, ${summary.elapsedMs} ms, request ${summary.requestId}\n`);
      }
    });

  program
    .command("clients")
    .description("list connected clients and their relays")
    .option("--tenant <name>", "only this tenant's clients")
    .action(async (options: { tenant?: string }) => {
      const context = cliContext(globals());
      const client = hubClient(context);
      const response = await callUnary(client.listClients.bind(client), { tenant: options.tenant ?? "" });
      printTable(
        ["SPIFFE ID", "tenant", "relays", "connected since"],
        response.clients.map((c) => [c.spiffeId, c.tenant, c.relayIds.join(", "), c.connectedSince?.toISOString()]),
        { json: context.json, jsonValue: response.clients },
      );
    });
}
