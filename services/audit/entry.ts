/**
 * The stored form of audit log entries and their hashes.
 *
 * Every entry is a flat JSON object with snake_case keys named after the
 * fields of `ewii.audit.v1.AuditRecord`, plus `kind` ("record" or
 * "checkpoint"). Values are encoded as follows:
 *   - string fields: JSON strings;
 *   - uint64 fields (`sequence`, `policy_version`, `rows`, `bytes`): decimal
 *     strings, so that no value loses precision in a JSON number;
 *   - uint32 fields (`latency_ms`): JSON numbers;
 *   - bytes fields (`client_signature`, `client_cert_der`, checkpoint
 *     `signature`): standard base64 with padding;
 *   - `time`: RFC 3339 in UTC with milliseconds ("2026-12-04T21:30:00.123Z").
 * Optional fields at their proto3 default (empty string, zero, empty bytes)
 * are left out, so a field added to the proto later does not change the
 * hash of records stored before it. `kind`, `sequence`, `time`,
 * `previous_hash` and `hash` are always present.
 *
 * `hash` is the lowercase hexadecimal SHA-256 of the RFC 8785 (JCS)
 * canonical JSON of the entry without its `hash` key. `previous_hash` is the
 * `hash` of the entry before it, or 64 zeros for sequence 1. Checkpoints
 * share the sequence numbers and the chain with records.
 *
 * A stored line is that canonical JSON with `"hash":"<hex>"` added as the
 * last key, then "\n". Readers parse the line as ordinary JSON, so only
 * the hash input depends on key order.
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";

/** A stored entry: a flat JSON object with string or integer values. */
export type StoredEntry = Record<string, string | number>;

export const ENTRY_KIND_RECORD = "record";
export const ENTRY_KIND_CHECKPOINT = "checkpoint";

/** `previous_hash` of the entry at sequence 1. */
export const GENESIS_HASH = "0".repeat(64);

type FieldEncoding = "string" | "uint64" | "uint32" | "bytes";

/** Fields of a record set by the hub, in proto order: [record key, stored key, encoding]. */
const RECORD_FIELDS: ReadonlyArray<readonly [keyof AuditRecord, string, FieldEncoding]> = [
  ["event", "event", "string"],
  ["requestId", "request_id", "string"],
  ["tenant", "tenant", "string"],
  ["callerSpiffeId", "caller_spiffe_id", "string"],
  ["callerSerial", "caller_serial", "string"],
  ["clientSpiffeId", "client_spiffe_id", "string"],
  ["clientSerial", "client_serial", "string"],
  ["relayId", "relay_id", "string"],
  ["dataset", "dataset", "string"],
  ["queryId", "query_id", "string"],
  ["sqlSha256", "sql_sha256", "string"],
  ["paramsDigest", "params_digest", "string"],
  ["paramsRawJson", "params_raw_json", "string"],
  ["decision", "decision", "string"],
  ["rule", "rule", "string"],
  ["policyVersion", "policy_version", "uint64"],
  ["outcome", "outcome", "string"],
  ["rows", "rows", "uint64"],
  ["bytes", "bytes", "uint64"],
  ["latencyMs", "latency_ms", "uint32"],
  ["resultSha256", "result_sha256", "string"],
  ["clientSignature", "client_signature", "bytes"],
  ["clientCertDer", "client_cert_der", "bytes"],
  ["paramsSha256", "params_sha256", "string"],
];

/**
 * Every key a record entry can have, hash excluded, sorted by UTF-16 code
 * units as RFC 8785 section 3.2.3 requires.
 */
export const RECORD_KEYS_SORTED: readonly string[] = ["kind", "sequence", "time", "previous_hash", ...RECORD_FIELDS.map(([, storedKey]) => storedKey)].sort();

/**
 * Returns the JCS canonical JSON of a value (RFC 8785). Flat objects of
 * strings and safe integers, which every stored entry is, take a native
 * path: JSON.stringify with the keys sorted by UTF-16 code units writes
 * strings and integers exactly as RFC 8785 does, and is several times
 * faster than the general encoder on the append path.
 */
export function canonicalJson(value: unknown): string {
  if (isFlatEntry(value)) return JSON.stringify(value, Object.keys(value).sort());
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError("canonicalJson: the value has no JSON form");
  return text;
}

function isFlatEntry(value: unknown): value is StoredEntry {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  for (const item of Object.values(value)) {
    if (typeof item !== "string" && !(typeof item === "number" && Number.isSafeInteger(item))) return false;
  }
  return true;
}

/** Computes an entry's `hash`: SHA-256 over the canonical JSON of every key except `hash`. */
export function entryHash(entry: StoredEntry): string {
  return hashCanonical(canonicalWithoutHash(entry));
}

/**
 * Sets `entry.hash` and returns the stored line, newline included. The
 * canonical JSON is computed once for both, because it dominates the cost
 * of an append.
 */
export function sealEntry(entry: StoredEntry): string {
  const canonical = canonicalWithoutHash(entry);
  entry.hash = hashCanonical(canonical);
  return `${canonical.slice(0, -1)}${canonical.length > 2 ? "," : ""}"hash":"${entry.hash}"}\n`;
}

function canonicalWithoutHash(entry: StoredEntry): string {
  const { hash: _omitted, ...rest } = entry;
  return canonicalJson(rest);
}

function hashCanonical(canonical: string): string {
  return createHash("sha256").update(canonical, "utf8").digest("hex");
}

/** Encodes the hub-set fields of a record into stored form, leaving out defaults. */
export function encodeRecordFields(record: AuditRecord): StoredEntry {
  const entry: StoredEntry = { kind: ENTRY_KIND_RECORD };
  for (const [key, storedKey, encoding] of RECORD_FIELDS) {
    const value = record[key];
    switch (encoding) {
      case "string":
        if (value !== "") entry[storedKey] = value as string;
        break;
      case "uint64":
        if (value !== 0n) entry[storedKey] = (value as bigint).toString(10);
        break;
      case "uint32":
        if (value !== 0) entry[storedKey] = value as number;
        break;
      case "bytes":
        if ((value as Buffer).length > 0) entry[storedKey] = (value as Buffer).toString("base64");
        break;
    }
  }
  return entry;
}

/** Decodes a stored record entry into an AuditRecord. Unknown keys are ignored. */
export function decodeRecord(entry: StoredEntry): AuditRecord {
  const record: AuditRecord = emptyRecord();
  const writable = record as unknown as Record<string, unknown>;
  for (const [key, storedKey, encoding] of RECORD_FIELDS) {
    const value = entry[storedKey];
    if (value === undefined) continue;
    switch (encoding) {
      case "string":
        writable[key] = String(value);
        break;
      case "uint64":
        writable[key] = BigInt(value);
        break;
      case "uint32":
        writable[key] = Number(value);
        break;
      case "bytes":
        writable[key] = Buffer.from(String(value), "base64");
        break;
    }
  }
  record.sequence = BigInt(entry.sequence ?? 0);
  record.time = typeof entry.time === "string" ? new Date(entry.time) : undefined;
  record.previousHash = String(entry.previous_hash ?? "");
  record.hash = String(entry.hash ?? "");
  return record;
}

/** Returns an AuditRecord with every field at its proto3 default. */
export function emptyRecord(): AuditRecord {
  return {
    sequence: 0n,
    time: undefined,
    event: "",
    requestId: "",
    tenant: "",
    callerSpiffeId: "",
    callerSerial: "",
    clientSpiffeId: "",
    clientSerial: "",
    relayId: "",
    dataset: "",
    queryId: "",
    sqlSha256: "",
    paramsDigest: "",
    paramsRawJson: "",
    decision: "",
    rule: "",
    policyVersion: 0n,
    outcome: "",
    rows: 0n,
    bytes: 0n,
    latencyMs: 0,
    resultSha256: "",
    clientSignature: Buffer.alloc(0),
    clientCertDer: Buffer.alloc(0),
    previousHash: "",
    hash: "",
    paramsSha256: "",
  };
}

/** Reads the sequence of a stored entry, or undefined when it is not a positive decimal. */
export function entrySequence(entry: StoredEntry): bigint | undefined {
  const value = entry.sequence;
  if (typeof value !== "string" || !/^[1-9][0-9]{0,19}$/.test(value)) return undefined;
  return BigInt(value);
}

/**
 * Parses one stored line (without its newline). Returns undefined when the
 * line is not a JSON object of strings and integers.
 */
export function parseEntryLine(line: string): StoredEntry | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  for (const value of Object.values(parsed)) {
    if (typeof value !== "string" && !(typeof value === "number" && Number.isSafeInteger(value))) return undefined;
  }
  return parsed as StoredEntry;
}

/** Serializes an entry that already has its hash as one stored line, newline included. */
export function entryLine(entry: StoredEntry): string {
  const { hash, ...rest } = entry;
  const canonical = canonicalJson(rest);
  if (hash === undefined) return `${canonical}\n`;
  return `${canonical.slice(0, -1)}${canonical.length > 2 ? "," : ""}"hash":${JSON.stringify(hash)}}\n`;
}
