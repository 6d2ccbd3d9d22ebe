import { createHash, randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import type { ExecuteQueryRequest, ExecuteQueryResponse } from "../../gen/ewii/hub/v1/hub.js";
import type { ResultSummary, Value } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { EwiiError, asError, errorCodeOf, isEwiiError } from "../core/errors.js";
import { IdentityErrorCode, quote } from "../core/identity/errors.js";
import { SpiffeId } from "../core/identity/spiffe-id.js";
import type { PeerIdentity, ServerStreamContext } from "../core/grpc/index.js";
import { LogField } from "../core/log.js";
import { canonicalParamsBytes, RowDigest, verifySummarySignature } from "../client/query/summary.js";
import { MAX_PARAMS_BYTES } from "../audit/params.js";
import { RequestErrorCode } from "../policy/index.js";
import { MAX_FIELD_CHARS } from "../audit/record-input.js";
import type { AuditAppender, ClientConnection, ClientConnector, HubDecision, PolicyGate } from "./ports.js";

export interface ExecuteDeps {
  operatorTrustDomain: string;
  policy: PolicyGate;
  audit: AuditAppender;
  connector: ClientConnector;
  /** Returns the revocation sequence covering the caller, or undefined. */
  callerRevocation: (peer: PeerIdentity) => number | undefined;
  /** Reason to reject every new query (stale revocation or policy state), or undefined. */
  rejectionReason: () => string | undefined;
  now?: () => number;
}

/**
 * Builds the client SPIFFE ID from a full ID or a path within the tenant's
 * trust domain, and checks it against the SPIFFE ID rules so that the audit
 * log never records an ID that no client can hold.
 */
export function resolveClientId(tenant: string, client: string, operatorTrustDomain: string): string {
  const trustDomain = `${tenant}.tenants.${operatorTrustDomain}`;
  if (!client.startsWith("spiffe://") && !client.startsWith("/")) {
    throw new EwiiError("ERR_CLIENT_INVALID", `client ${quote(client)} must be a SPIFFE ID or a path starting with "/", for example /client/site-1`, { status: status.INVALID_ARGUMENT });
  }
  const clientId = client.startsWith("spiffe://") ? client : `spiffe://${trustDomain}${client}`;
  let parsed: SpiffeId;
  try {
    parsed = SpiffeId.parse(clientId);
  } catch (err) {
    if (errorCodeOf(err) !== IdentityErrorCode.spiffeIdInvalid) throw err;
    throw new EwiiError("ERR_CLIENT_INVALID", `client of tenant ${quote(tenant)} is invalid: ${asError(err).message}; pass the client's SPIFFE ID or a path such as /client/site-1`, {
      status: status.INVALID_ARGUMENT,
    });
  }
  if (parsed.trustDomain !== trustDomain) {
    throw new EwiiError("ERR_CLIENT_WRONG_TENANT", `client ${client} is not in tenant ${tenant}'s trust domain ${trustDomain}; pass a SPIFFE ID of that trust domain or a path such as /client/site-1`, { status: status.INVALID_ARGUMENT });
  }
  if (parsed.path === "") {
    throw new EwiiError("ERR_CLIENT_INVALID", `client ${client} has no path; pass a client's SPIFFE ID such as spiffe://${trustDomain}/client/site-1`, { status: status.INVALID_ARGUMENT });
  }
  return clientId;
}

/**
 * Rejects an empty field, and one longer than the audit service stores, so
 * that the caller gets INVALID_ARGUMENT and not an audit failure to retry.
 */
function requireField(value: string, name: string): void {
  if (value.trim() === "") throw new EwiiError("ERR_REQUEST_INVALID", `ExecuteQuery field "${name}" is required`, { status: status.INVALID_ARGUMENT });
  if (value.length > MAX_FIELD_CHARS) {
    throw new EwiiError("ERR_REQUEST_INVALID", `ExecuteQuery field "${name}" is ${value.length} characters, above the limit of ${MAX_FIELD_CHARS}; send a shorter value`, {
      status: status.INVALID_ARGUMENT,
    });
  }
}

/**
 * Returns the parameters as a JSON object for the audit service, which stores an
 * HMAC of its canonical form unless the dataset keeps raw parameters. Each
 * value is tagged with its type; integers are decimal strings so that
 * 64-bit values survive JSON.
 */
export function paramsJson(params: Record<string, Value>): string {
  const tagged: Record<string, unknown> = {};
  for (const name of Object.keys(params).sort()) {
    const value = params[name];
    if (value.intValue !== undefined) tagged[name] = { int: value.intValue.toString() };
    else if (value.doubleValue !== undefined) tagged[name] = { real: value.doubleValue };
    else if (value.stringValue !== undefined) tagged[name] = { text: value.stringValue };
    else if (value.boolValue !== undefined) tagged[name] = { bool: value.boolValue };
    else if (value.bytesValue !== undefined) tagged[name] = { bytes: Buffer.from(value.bytesValue).toString("base64") };
    else tagged[name] = { null: true };
  }
  return JSON.stringify(tagged);
}

/**
 * Runs ExecuteQuery: deny-set check, local policy decision, durable
 * `query.started` (or `query.denied`) record, the query over the
 * end-to-end session, signature verification, and the closing record.
 */
export async function executeQuery(request: ExecuteQueryRequest, ctx: ServerStreamContext<ExecuteQueryResponse>, deps: ExecuteDeps): Promise<void> {
  const now = deps.now ?? Date.now;
  const startedMs = now();
  const caller = ctx.peer;
  if (caller === undefined || caller.trustDomain !== deps.operatorTrustDomain) {
    throw new EwiiError("ERR_CALLER_NOT_OPERATOR", `caller ${caller?.spiffeId ?? "(anonymous)"} is not an operator workload; call the hub with an SVID of ${deps.operatorTrustDomain}`, { status: status.PERMISSION_DENIED });
  }
  for (const field of ["tenant", "client", "dataset", "queryId"] as const) requireField(request[field], field);

  const reason = deps.rejectionReason();
  if (reason !== undefined) throw new EwiiError("ERR_HUB_NOT_SERVING", `query rejected: ${reason}`, { status: status.UNAVAILABLE });
  const revokedSequence = deps.callerRevocation(caller);
  if (revokedSequence !== undefined) {
    throw new EwiiError("ERR_REVOKED", `caller ${caller.spiffeId} (serial ${caller.serial}) is revoked (revocation sequence ${revokedSequence}); enroll the workload again to get a new SVID`, { status: status.PERMISSION_DENIED });
  }

  const clientSpiffeId = resolveClientId(request.tenant, request.client, deps.operatorTrustDomain);
  const paramsRawJson = paramsJson(request.params);
  checkParamsSize(request.params, paramsRawJson);
  const requestId = randomBytes(16);
  const paramsSalt = randomBytes(32);
  const requestIdHex = requestId.toString("hex");
  const logger = ctx.logger.child({ [LogField.requestId]: requestIdHex, [LogField.tenant]: request.tenant, [LogField.clientSpiffeId]: clientSpiffeId });
  const decision = deps.policy.decide({ principal: caller.spiffeId, tenant: request.tenant, dataset: request.dataset, queryId: request.queryId, params: request.params });

  const base: Partial<AuditRecord> = {
    requestId: requestIdHex,
    tenant: request.tenant,
    callerSpiffeId: caller.spiffeId,
    callerSerial: caller.serial,
    clientSpiffeId,
    dataset: request.dataset,
    queryId: request.queryId,
    paramsRawJson,
    decision: decision.effect,
    rule: decision.rule,
    policyVersion: BigInt(decision.policyVersion),
  };

  if (decision.effect === "deny") {
    await appendOrReject(deps.audit, { ...base, event: "query.denied", outcome: "denied" }, ctx.signal);
    if (decision.requestError !== undefined) {
      logger.info("query rejected as invalid", { [LogField.errorCode]: decision.requestError, policy_version: decision.policyVersion });
      const notFound = decision.requestError === RequestErrorCode.queryUnknown;
      throw new EwiiError(decision.requestError, `query ${request.queryId} on ${request.tenant}/${request.dataset} rejected: ${decision.reason}; ${notFound ? "use a dataset and query id of the catalog (ewii policy show lists them)" : "correct the request and retry"}`, {
        status: notFound ? status.NOT_FOUND : status.INVALID_ARGUMENT,
      });
    }
    logger.info("query denied by policy", { rule: decision.rule, policy_version: decision.policyVersion });
    throw new EwiiError("ERR_POLICY_DENIED", `query ${request.queryId} on ${request.tenant}/${request.dataset} denied by rule "${decision.rule}" (policy version ${decision.policyVersion})${decision.reason === `denied by rule "${decision.rule}"` ? "" : `: ${decision.reason}`}`, { status: status.PERMISSION_DENIED });
  }

  await appendOrReject(deps.audit, { ...base, event: "query.started" }, ctx.signal);

  let connection: ClientConnection | undefined;
  try {
    connection = await deps.connector.connect(clientSpiffeId, ctx.signal);
    const outcome = await relayQuery(request, requestId, paramsSalt, decision, connection, ctx);
    const elapsedMs = now() - startedMs;
    const [sequence] = await appendOrReject(
      deps.audit,
      {
        ...base,
        event: "query.completed",
        outcome: "ok",
        sqlSha256: outcome.summary.sqlSha256,
        clientSerial: outcome.summary.signerSerial,
        relayId: connection.relayId,
        rows: outcome.summary.rowCount,
        bytes: outcome.summary.byteCount,
        latencyMs: elapsedMs,
        resultSha256: outcome.summary.rowsSha256,
        paramsSha256: outcome.summary.paramsSha256,
        clientSignature: outcome.summary.signature,
        clientCertDer: connection.clientCertDer,
      },
      undefined,
    );
    await ctx.write({
      summary: {
        requestId: requestIdHex,
        rowCount: outcome.summary.rowCount,
        byteCount: outcome.summary.byteCount,
        rowsSha256: outcome.summary.rowsSha256,
        rule: decision.rule,
        policyVersion: BigInt(decision.policyVersion),
        auditSequence: BigInt(sequence),
        elapsedMs,
      },
    });
    logger.info("query completed", { rows: Number(outcome.summary.rowCount), elapsed_ms: elapsedMs, [LogField.relayId]: connection.relayId });
  } catch (err) {
    const error = isEwiiError(err) ? err : new EwiiError("ERR_INTERNAL", "the query failed inside the hub; the hub log has the cause", { status: status.INTERNAL, cause: err });
    try {
      await deps.audit.append([{ ...base, event: "query.failed", outcome: error.code, relayId: connection?.relayId ?? "", latencyMs: now() - startedMs }]);
    } catch (auditErr) {
      logger.error("could not record query.failed", { [LogField.cause]: asError(auditErr).message, error_code: error.code });
    }
    throw error;
  }
}

/**
 * Rejects parameters whose JSON form is larger than the audit service
 * accepts, naming the largest one, so the caller sees its own mistake and
 * not an audit failure.
 */
function checkParamsSize(params: Record<string, Value>, json: string): void {
  const bytes = Buffer.byteLength(json, "utf8");
  if (bytes <= MAX_PARAMS_BYTES) return;
  const sizes = Object.keys(params).map((name) => [name, Buffer.byteLength(paramsJson({ [name]: params[name] }), "utf8")] as const);
  const [largest, largestBytes] = sizes.reduce((a, b) => (b[1] > a[1] ? b : a));
  throw new EwiiError("ERR_PARAMS_TOO_LARGE", `parameters take ${bytes} bytes, above the limit of ${MAX_PARAMS_BYTES}; the largest is "${largest}" (${largestBytes} bytes): send a shorter value`, {
    status: status.INVALID_ARGUMENT,
  });
}

async function appendOrReject(audit: AuditAppender, record: Partial<AuditRecord>, signal: AbortSignal | undefined): Promise<number[]> {
  try {
    return await audit.append([record], signal);
  } catch (err) {
    throw new EwiiError("ERR_AUDIT_UNAVAILABLE", `query rejected: the audit service did not acknowledge the ${record.event} record; retry when audit is available`, { status: status.UNAVAILABLE, cause: err });
  }
}

/**
 * gRPC status for the client's own error codes, where one fits better than
 * FAILED_PRECONDITION, the status of allow-list refusals and of failures
 * in the customer's database.
 */
const CLIENT_CODE_STATUS: Readonly<Record<string, status>> = {
  ERR_QUERY_ROW_CAP: status.RESOURCE_EXHAUSTED,
  ERR_QUERY_BYTE_CAP: status.RESOURCE_EXHAUSTED,
  ERR_QUERY_TIMEOUT: status.DEADLINE_EXCEEDED,
  ERR_QUERY_CANCELLED: status.CANCELLED,
  ERR_QUERY_PARAMS_INVALID: status.INVALID_ARGUMENT,
  ERR_CLIENT_BUSY: status.UNAVAILABLE,
  ERR_CLIENT_CLOSED: status.UNAVAILABLE,
  ERR_INTERNAL: status.INTERNAL,
};

interface RelayedOutcome {
  summary: ResultSummary;
}

async function relayQuery(
  request: ExecuteQueryRequest,
  requestId: Buffer,
  paramsSalt: Buffer,
  decision: HubDecision,
  connection: ClientConnection,
  ctx: ServerStreamContext<ExecuteQueryResponse>,
): Promise<RelayedOutcome> {
  const digest = new RowDigest();
  const sqlSha256ByEngine = decision.sqlSha256ByEngine;
  const anyHash = Object.values(sqlSha256ByEngine)[0] ?? "";
  const deadline = ctx.deadline?.getTime() ?? 0;

  for await (const message of connection.query(
    {
      requestId,
      dataset: request.dataset,
      queryId: request.queryId,
      sqlSha256: anyHash,
      sqlSha256ByEngine,
      params: request.params,
      maxRows: decision.maxRows,
      paramsSalt,
      deadlineUnixMs: BigInt(deadline),
      callerSpiffeId: ctx.peer?.spiffeId ?? "",
    },
    ctx.signal,
    (encoded) => digest.updateEncoded(encoded),
  )) {
    if (message.columns !== undefined) {
      await ctx.write({ columns: { names: message.columns.names, types: message.columns.types } });
    } else if (message.rows !== undefined) {
      // The digest already covers these rows: the connection fed it their received bytes.
      await ctx.write({ rows: { rows: message.rows.rows } });
    } else if (message.summary !== undefined) {
      const summary = message.summary;
      checkSummary(summary, requestId, paramsSalt, request, digest, connection, sqlSha256ByEngine);
      if (summary.status !== "ok") {
        const code = summary.status.startsWith("ERR_") ? summary.status : "ERR_CLIENT_REFUSED";
        throw new EwiiError(code, `client ${connection.clientSpiffeId} refused or failed the query: ${summary.message}`, { status: CLIENT_CODE_STATUS[code] ?? status.FAILED_PRECONDITION });
      }
      return { summary };
    }
  }
  throw new EwiiError("ERR_SESSION_CLOSED", `the session to client ${connection.clientSpiffeId} ended before the result summary; retry the query`, { status: status.UNAVAILABLE });
}

/** Verifies the client's signed summary against what the hub sent and received. */
function checkSummary(
  summary: ResultSummary,
  requestId: Buffer,
  paramsSalt: Buffer,
  request: ExecuteQueryRequest,
  digest: RowDigest,
  connection: ClientConnection,
  sqlSha256ByEngine: Record<string, string>,
): void {
  const invalid = (what: string) =>
    new EwiiError("ERR_RESULT_SIGNATURE_INVALID", `result from client ${connection.clientSpiffeId} failed verification: ${what}; the result is not trusted`, { status: status.DATA_LOSS });
  if (!verifySummarySignature(summary, connection.clientPublicKey)) throw invalid("the summary signature does not verify with the client's SVID key");
  if (!Buffer.from(summary.requestId).equals(requestId)) throw invalid("the summary names another request id");
  if (summary.signerSerial !== connection.clientSerial) throw invalid(`signer serial ${summary.signerSerial} is not the session's client serial ${connection.clientSerial}`);
  if (summary.status !== "ok") return;
  const expectedParams = createHash("sha256").update(paramsSalt).update(canonicalParamsBytes(request.params)).digest("hex");
  if (summary.paramsSha256 !== expectedParams) throw invalid("the parameter digest differs from the request's");
  if (!Object.values(sqlSha256ByEngine).includes(summary.sqlSha256)) throw invalid("the SQL hash is not one of the catalog's");
  if (summary.rowsSha256 !== digest.digestHex()) throw invalid("the rows digest differs from the rows received");
}
