/**
 * Validation of records a hub appends, and their preparation for storage:
 * parameters become a keyed digest, kept raw only for configured datasets.
 */
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import { emptyRecord, encodeRecordFields } from "./entry.js";
import { quote, recordInvalid } from "./errors.js";
import { canonicalParams, paramsDigest } from "./params.js";
import { prepareSeal } from "./sealed-record.js";
import type { PreparedRecord } from "./sealed-record.js";

/**
 * A record as the hub sends it: every hub-set field of AuditRecord.
 * `paramsRawJson` carries the query parameters as a JSON object; the log
 * replaces them with `params_digest` and keeps them only for datasets listed
 * in `raw_params_datasets`.
 */
export type AuditRecordInput = Partial<Omit<AuditRecord, "sequence" | "time" | "previousHash" | "hash" | "paramsDigest">>;

export const AUDIT_EVENTS = ["query.started", "query.denied", "query.completed", "query.failed"] as const;
export const AUDIT_DECISIONS = ["allow", "deny"] as const;

/** Longest accepted text field, in characters. */
export const MAX_FIELD_CHARS = 2048;
/** Largest accepted client signature, in bytes. */
export const MAX_CLIENT_SIGNATURE_BYTES = 1024;
/** Largest accepted client certificate, in bytes. */
export const MAX_CLIENT_CERT_BYTES = 16 * 1024;

const HEX = /^[0-9a-f]+$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const MAX_UINT32 = 0xffffffff;
const MAX_UINT64 = (1n << 64n) - 1n;

export interface ParamsPolicy {
  key: Buffer;
  rawDatasets: ReadonlySet<string>;
}

/**
 * Validates one input record and returns its stored fields without
 * sequence, time and hashes, with their canonical JSON ready for sealing.
 * `index` is the record's position in the request, for error messages.
 */
export function prepareRecord(input: AuditRecordInput, index: number, params: ParamsPolicy): PreparedRecord {
  const record: AuditRecord = { ...emptyRecord(), ...input, sequence: 0n, time: undefined, previousHash: "", hash: "" };
  const at = `record ${index}`;

  if (!(AUDIT_EVENTS as readonly string[]).includes(record.event)) {
    throw recordInvalid(`${at}: event ${quote(record.event)} is invalid; use one of ${AUDIT_EVENTS.join(", ")}`);
  }
  if (!(AUDIT_DECISIONS as readonly string[]).includes(record.decision)) {
    throw recordInvalid(`${at}: decision ${quote(record.decision)} is invalid; use "allow" or "deny"`);
  }
  requireText(at, "request_id", record.requestId, HEX, "lowercase hexadecimal");
  requireText(at, "tenant", record.tenant);
  requireText(at, "caller_spiffe_id", record.callerSpiffeId, /^spiffe:\/\//, "a spiffe:// URI");
  requireText(at, "caller_serial", record.callerSerial, HEX, "lowercase hexadecimal");
  requireText(at, "client_spiffe_id", record.clientSpiffeId, /^spiffe:\/\//, "a spiffe:// URI");
  requireText(at, "dataset", record.dataset);
  requireText(at, "query_id", record.queryId);
  requireText(at, "rule", record.rule);
  optionalText(at, "client_serial", record.clientSerial, HEX, "lowercase hexadecimal");
  optionalText(at, "relay_id", record.relayId);
  optionalText(at, "sql_sha256", record.sqlSha256, SHA256_HEX, "64 lowercase hexadecimal digits");
  optionalText(at, "outcome", record.outcome);
  optionalText(at, "result_sha256", record.resultSha256, SHA256_HEX, "64 lowercase hexadecimal digits");
  optionalText(at, "params_sha256", record.paramsSha256, SHA256_HEX, "64 lowercase hexadecimal digits");
  for (const [name, value] of [["policy_version", record.policyVersion], ["rows", record.rows], ["bytes", record.bytes]] as const) {
    if (typeof value !== "bigint" || value < 0n || value > MAX_UINT64) throw recordInvalid(`${at}: ${name} must be an unsigned 64-bit integer`);
  }
  if (!Number.isInteger(record.latencyMs) || record.latencyMs < 0 || record.latencyMs > MAX_UINT32) {
    throw recordInvalid(`${at}: latency_ms must be an unsigned 32-bit integer of milliseconds`);
  }
  if (record.clientSignature.length > MAX_CLIENT_SIGNATURE_BYTES) {
    throw recordInvalid(`${at}: client_signature is ${record.clientSignature.length} bytes, above the limit of ${MAX_CLIENT_SIGNATURE_BYTES}`);
  }
  if (record.clientCertDer.length > MAX_CLIENT_CERT_BYTES) {
    throw recordInvalid(`${at}: client_cert_der is ${record.clientCertDer.length} bytes, above the limit of ${MAX_CLIENT_CERT_BYTES}`);
  }

  const canonical = canonicalParams(record.paramsRawJson);
  record.paramsDigest = paramsDigest(params.key, canonical);
  record.paramsRawJson = params.rawDatasets.has(record.dataset) ? canonical : "";
  return prepareSeal(encodeRecordFields(record), record);
}

function requireText(at: string, name: string, value: string, pattern?: RegExp, form?: string): void {
  if (typeof value !== "string" || value === "") throw recordInvalid(`${at}: ${name} is missing; it is required`);
  optionalText(at, name, value, pattern, form);
}

function optionalText(at: string, name: string, value: string, pattern?: RegExp, form?: string): void {
  if (typeof value !== "string") throw recordInvalid(`${at}: ${name} must be a string`);
  if (value === "") return;
  if (value.length > MAX_FIELD_CHARS) throw recordInvalid(`${at}: ${name} is ${value.length} characters, above the limit of ${MAX_FIELD_CHARS}`);
  if (pattern !== undefined && !pattern.test(value)) throw recordInvalid(`${at}: ${name} ${quote(value)} is invalid; expected ${form ?? "a different form"}`);
}
