import type { Command } from "commander";
import type { AuditRecord, TailResponse } from "../../../gen/ewii/audit/v1/audit.js";
import { formatRecord, readCheckpointPublicKey, verifyAuditLog, CHECKPOINT_PUBLIC_KEY_FILE, MAX_QUERY_LIMIT } from "../../audit/index.js";
import { TENANT_NAME_PATTERN } from "../../ca/tenants.js";
import { asError, EwiiError } from "../../core/errors.js";
import { SpiffeId } from "../../core/identity/spiffe-id.js";
import { callUnary } from "../../core/grpc/index.js";
import { applyPolicyFile } from "../../policy/apply-cli.js";
import { auditClient, cliContext, policyClient, type GlobalOptions } from "../connect.js";
import { jsonReplacer, printObject } from "../output.js";
import { parseIntOption } from "./ca-admin.js";
import { join } from "node:path";

function printRecords(records: AuditRecord[], json: boolean): void {
  for (const record of records) process.stdout.write((json ? JSON.stringify(record, jsonReplacer) : formatRecord(record)) + "\n");
}

/** Rejects audit filters that no record can match: a malformed tenant name, SPIFFE ID or decision. */
export function checkAuditFilters(filters: { tenant?: string; principal?: string; client?: string; decision?: string }): void {
  if (filters.tenant !== undefined && !TENANT_NAME_PATTERN.test(filters.tenant)) {
    throw new EwiiError("ERR_USAGE", `--tenant ${JSON.stringify(filters.tenant)} is not a tenant name (lowercase letters, digits and '-', at most 63 characters); see ewii tenant list`);
  }
  for (const [flag, value, example] of [
    ["--principal", filters.principal, "spiffe://operator.example/caller/reports"],
    ["--client", filters.client, "spiffe://acme.tenants.operator.example/client/site-1"],
  ] as const) {
    if (value === undefined) continue;
    try {
      SpiffeId.parse(value);
    } catch (err) {
      throw new EwiiError("ERR_USAGE", `${flag}: ${asError(err).message}; pass the full ID, for example ${example}`, { cause: err });
    }
  }
  if (filters.decision !== undefined && filters.decision !== "allow" && filters.decision !== "deny") {
    throw new EwiiError("ERR_USAGE", `--decision ${JSON.stringify(filters.decision)} is invalid; use allow or deny`);
  }
}

/**
 * Prints every stored audit record, oldest first, and returns the last
 * sequence printed, or 0 when the log is empty.
 */
async function printStoredRecords(client: ReturnType<typeof auditClient>, json: boolean): Promise<bigint> {
  let last = 0n;
  for (;;) {
    const response = await callUnary(client.query.bind(client), { tenant: "", principal: "", client: "", decision: "", limit: MAX_QUERY_LIMIT, afterSequence: last });
    printRecords(response.records, json);
    if (response.records.length > 0) last = response.records[response.records.length - 1].sequence;
    // NOTE: on an empty log the tail starts with 0 ("only new"), so a record appended between this query and the tail is not printed.
    if (response.records.length < MAX_QUERY_LIMIT) return last;
  }
}

export function registerPolicyAuditCommands(program: Command, globals: () => GlobalOptions): void {
  const policy = program.command("policy").description("policy service and policy documents");
  policy
    .command("apply")
    .description("validate a policy document and apply it as the next version")
    .requiredOption("-f, --file <file>", "policy YAML file")
    .action(async (options: { file: string }) => {
      const context = cliContext(globals());
      const result = await applyPolicyFile(options.file, policyClient(context), { print: (line) => (context.json ? undefined : process.stdout.write(line + "\n")) });
      if (context.json) printObject({ version: result.version, document_sha256: result.documentSha256 }, { json: true });
    });
  policy
    .command("show")
    .description("print the current policy: a version line, then the document itself as JSON (with --json, one object with the version fields and the document)")
    .action(async () => {
      const context = cliContext(globals());
      const client = policyClient(context);
      const response = await callUnary(client.getPolicy.bind(client), {});
      const snapshot = response.snapshot!;
      const { documentJson, ...fields } = snapshot;
      if (context.json) printObject({ ...fields, document: JSON.parse(documentJson) }, { json: true });
      else process.stdout.write(`policy version ${snapshot.version}, applied ${snapshot.appliedAt?.toISOString()} by ${snapshot.appliedBy}\n${JSON.stringify(JSON.parse(snapshot.documentJson), null, 2)}\n`);
    });

  const audit = program.command("audit").description("audit service and audit log");
  audit
    .command("tail")
    .description("stream audit records as they are appended (with --json, one JSON object per line)")
    .option("--after <sequence>", "start after this sequence; 0 prints every stored record first (default: only new records)", (v) => parseIntOption(v, "--after"))
    .action(async (options: { after?: number }) => {
      const context = cliContext(globals());
      const client = auditClient(context);
      // Tail takes 0 to mean "only new records", so --after 0 reads the stored records through Query first.
      const afterSequence = options.after === 0 ? await printStoredRecords(client, context.json) : BigInt(options.after ?? 0);
      const call = client.tail({ afterSequence });
      await new Promise<void>((resolve, reject) => {
        call.on("data", (response: TailResponse) => printRecords(response.record === undefined ? [] : [response.record], context.json));
        call.on("error", reject);
        call.on("end", resolve);
        process.once("SIGINT", () => {
          call.cancel();
          resolve();
        });
      });
    });
  audit
    .command("query")
    .description("print stored audit records that match the filters (with --json, one JSON object per line)")
    .option("--tenant <name>", "tenant")
    .option("--principal <spiffe-id>", "caller SPIFFE ID")
    .option("--client <spiffe-id>", "client SPIFFE ID")
    .option("--decision <allow|deny>", "decision")
    .option("--since <iso-time>", "records at or after this time")
    .option("--until <iso-time>", "records before this time")
    .option("--limit <n>", "at most this many records", (v) => parseIntOption(v, "--limit"))
    .option("--after <sequence>", "records after this sequence", (v) => parseIntOption(v, "--after"))
    .action(async (options: { tenant?: string; principal?: string; client?: string; decision?: string; since?: string; until?: string; limit?: number; after?: number }) => {
      // Filters match exactly, so a malformed one would silently match nothing.
      checkAuditFilters(options);
      const context = cliContext(globals());
      const client = auditClient(context);
      const parseTime = (value: string | undefined, flag: string): Date | undefined => {
        if (value === undefined) return undefined;
        const time = new Date(value);
        if (Number.isNaN(time.getTime())) throw new EwiiError("ERR_USAGE", `${flag} must be an ISO 8601 time such as 2026-12-04T10:00:00Z, got "${value}"`);
        return time;
      };
      const response = await callUnary(client.query.bind(client), {
        tenant: options.tenant ?? "",
        principal: options.principal ?? "",
        client: options.client ?? "",
        decision: options.decision ?? "",
        fromTime: parseTime(options.since, "--since"),
        toTime: parseTime(options.until, "--until"),
        limit: options.limit ?? 0,
        afterSequence: BigInt(options.after ?? 0),
      });
      printRecords(response.records, context.json);
    });
  audit
    .command("sinks")
    .description("show each SIEM export sink's state and how far it is behind the log")
    .action(async () => {
      const context = cliContext(globals());
      const client = auditClient(context);
      const response = await callUnary(client.listSinks.bind(client), {});
      if (context.json) {
        process.stdout.write(JSON.stringify(response.sinks, jsonReplacer) + "\n");
        return;
      }
      if (response.sinks.length === 0) process.stdout.write("no sinks configured\n");
      for (const sink of response.sinks) {
        const error = sink.lastError === "" ? "" : ` last error: ${sink.lastError}`;
        process.stdout.write(`${sink.name} ${sink.type} ${sink.target} ${sink.state} lag=${sink.lagEntries} oldest_unsent_age=${sink.oldestUnsentAgeMs}ms persisted=${sink.persistedSequence} head=${sink.headSequence}${error}\n`);
      }
    });
  audit
    .command("verify")
    .description("check the hash chain, checkpoint signatures and client signatures")
    .option("--dir <dir>", "verify a copy of the audit files in this folder instead of the live service")
    .option("--public-key <file>", `checkpoint public key (default <dir>/${CHECKPOINT_PUBLIC_KEY_FILE})`)
    .option("--from <sequence>", "first sequence to check", (v) => parseIntOption(v, "--from"))
    .option("--to <sequence>", "last sequence to check", (v) => parseIntOption(v, "--to"))
    .action(async (options: { dir?: string; publicKey?: string; from?: number; to?: number }) => {
      const json = globals().json === true;
      let report: { ok: boolean; checked: number; firstBadSequence?: bigint | number; problem?: string; detail: string };
      if (options.dir !== undefined) {
        const publicKey = await readCheckpointPublicKey(options.publicKey ?? join(options.dir, CHECKPOINT_PUBLIC_KEY_FILE));
        const { verifyAuditClientSignature } = await import("../../audit/client-signature.js");
        report = await verifyAuditLog(options.dir, {
          publicKey,
          from: options.from === undefined ? undefined : BigInt(options.from),
          to: options.to === undefined ? undefined : BigInt(options.to),
          verifyClientSignature: verifyAuditClientSignature,
        });
      } else {
        const context = cliContext(globals());
        const client = auditClient(context);
        const response = await callUnary(client.verify.bind(client), { fromSequence: BigInt(options.from ?? 0), toSequence: BigInt(options.to ?? 0) }, { deadlineMs: 300_000 });
        report = { ok: response.ok, checked: Number(response.checked), firstBadSequence: response.firstBadSequence, problem: response.problem, detail: response.detail };
      }
      if (json) printObject(report as unknown as Record<string, unknown>, { json: true });
      else if (report.ok) process.stdout.write(`audit log OK: ${report.checked} entries checked. ${report.detail}\n`);
      else process.stdout.write(`audit log FAILED at sequence ${report.firstBadSequence}: ${report.problem}: ${report.detail}\n`);
      if (!report.ok) process.exitCode = 1;
    });
}
