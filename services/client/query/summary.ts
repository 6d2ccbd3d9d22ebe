import { createHash, sign as signWithKey, verify as verifyWithKey } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { Row } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import type { ResultSummary, Value } from "../../../gen/ewii/tunnel/v1/tunnel.js";

/**
 * Signed result summaries. The client signs, the hub and `ewii audit verify`
 * check, all with the functions of this file so that the three agree on the
 * bytes.
 *
 * Canonical summary encoding (UTF-8, fields separated by "\n", no trailing
 * newline):
 *
 *   ewii-result-v1
 *   <request_id, lowercase hex>
 *   <sql_sha256>
 *   <params_sha256>
 *   <row_count, decimal>
 *   <byte_count, decimal>
 *   <rows_sha256>
 *   <status>
 *
 * The three hashes are 64 lowercase hex digits, or empty when the client had
 * nothing to hash (for example the SQL hash of a request for an unknown
 * query). Status is "ok" or an ERR_ code. `message`, `elapsed_ms` and
 * `signer_serial` are not signed: the serial only selects the certificate
 * to verify with, and the verifier binds that certificate to the client.
 * The signature is ECDSA P-256 with SHA-256, DER encoded.
 */

export const SUMMARY_DOMAIN_LABEL = "ewii-result-v1";
export const STATUS_OK = "ok";

const HASH_PATTERN = /^([0-9a-f]{64})?$/;
const STATUS_PATTERN = /^(ok|ERR_[A-Z0-9_]+)$/;

/** Summary fields covered by the signature. */
export type SignedSummaryFields = Pick<ResultSummary, "requestId" | "sqlSha256" | "paramsSha256" | "rowCount" | "byteCount" | "rowsSha256" | "status">;

/** Returns the signed bytes of a summary. Throws TypeError on a field that breaks the encoding's format. */
export function canonicalSummaryBytes(summary: SignedSummaryFields): Buffer {
  for (const [field, value] of [
    ["sql_sha256", summary.sqlSha256],
    ["params_sha256", summary.paramsSha256],
    ["rows_sha256", summary.rowsSha256],
  ] as const) {
    if (!HASH_PATTERN.test(value)) throw new TypeError(`summary ${field} must be 64 lowercase hex digits or empty`);
  }
  if (!STATUS_PATTERN.test(summary.status)) throw new TypeError('summary status must be "ok" or an ERR_ code');
  if (summary.rowCount < 0n || summary.byteCount < 0n) throw new TypeError("summary counts must not be negative");
  const lines = [
    SUMMARY_DOMAIN_LABEL,
    Buffer.from(summary.requestId).toString("hex"),
    summary.sqlSha256,
    summary.paramsSha256,
    summary.rowCount.toString(10),
    summary.byteCount.toString(10),
    summary.rowsSha256,
    summary.status,
  ];
  return Buffer.from(lines.join("\n"), "utf8");
}

/** Signs a summary with an ECDSA P-256 private key and returns the DER signature. */
export function signSummary(summary: SignedSummaryFields, privateKey: KeyObject): Buffer {
  return signWithKey("sha256", canonicalSummaryBytes(summary), { key: privateKey, dsaEncoding: "der" });
}

/**
 * Checks a summary's signature with the signer's public key (ECDSA P-256,
 * SHA-256, DER). Returns false for a wrong signature and for a summary
 * whose fields break the canonical format, because such a summary cannot
 * have been signed by a client.
 */
export function verifySummarySignature(summary: SignedSummaryFields & Pick<ResultSummary, "signature">, publicKey: KeyObject): boolean {
  let data: Buffer;
  try {
    data = canonicalSummaryBytes(summary);
  } catch {
    // A malformed field means no client signed these bytes.
    return false;
  }
  try {
    return verifyWithKey("sha256", data, { key: publicKey, dsaEncoding: "der" }, summary.signature);
  } catch {
    // node:crypto throws on a signature that is not valid DER; that is a failed check.
    return false;
  }
}

/**
 * Incremental SHA-256 over the protobuf encoding of each result row, in
 * order. Each row's encoding is prefixed with its length as a 4-byte
 * big-endian integer, so that row boundaries are part of the digest.
 */
export class RowDigest {
  private readonly hash = createHash("sha256");
  private readonly lengthPrefix = Buffer.alloc(4);
  private rows = 0n;
  private bytes = 0n;

  /** Adds one row and returns its encoded length in bytes. */
  update(row: Row): number {
    return this.updateEncoded(Row.encode(row).finish());
  }

  /**
   * Adds one row given as its protobuf encoding, for example the bytes of a
   * Row inside a received RowChunk, and returns the encoded length.
   */
  updateEncoded(encoded: Uint8Array): number {
    this.lengthPrefix.writeUInt32BE(encoded.length);
    this.hash.update(this.lengthPrefix);
    this.hash.update(encoded);
    this.rows += 1n;
    this.bytes += BigInt(encoded.length);
    return encoded.length;
  }

  get rowCount(): bigint {
    return this.rows;
  }

  /** Sum of the encoded row lengths, without the length prefixes. */
  get byteCount(): bigint {
    return this.bytes;
  }

  /** Returns the lowercase hex digest; the digest can be read only once. */
  digestHex(): string {
    return this.hash.digest("hex");
  }
}

/** SHA-256 of the empty row sequence, for summaries of requests that sent no row. */
export const EMPTY_ROWS_SHA256 = createHash("sha256").digest("hex");

/**
 * Returns the canonical encoding of query parameters:
 *
 *   "ewii-params-v1\n" ‖ u32 count ‖ one entry per parameter
 *   entry = u32 name length ‖ UTF-8 name ‖ u8 number of set fields ‖
 *           (tag byte ‖ payload) per set field, in field-number order
 *
 * Entries are sorted by the bytes of their UTF-8 names.
 *
 * Tags and payloads: "n" null (1 byte, 0 or 1), "i" integer (8 bytes,
 * two's complement), "d" double (8 bytes, IEEE 754), "s" text (u32 length
 * ‖ UTF-8), "b" bytes (u32 length ‖ bytes), "t" boolean (1 byte). All
 * integers are big-endian. A Value with no field or several fields set
 * still has an encoding, so refusals of malformed requests can be hashed.
 */
export function canonicalParamsBytes(params: Readonly<Record<string, Value>>): Buffer {
  const entries = Object.entries(params)
    .map(([name, value]) => ({ nameBytes: Buffer.from(name, "utf8"), value }))
    .sort((a, b) => Buffer.compare(a.nameBytes, b.nameBytes));
  const parts: Buffer[] = [Buffer.from("ewii-params-v1\n", "utf8"), u32(entries.length)];
  for (const { nameBytes, value } of entries) {
    parts.push(u32(nameBytes.length), nameBytes, ...encodeValue(value));
  }
  return Buffer.concat(parts);
}

/**
 * Returns SHA-256(salt ‖ canonicalParamsBytes(params)), lowercase hex. The
 * salt is the request's `params_salt`, 32 random bytes chosen by the hub,
 * so the signed digest does not let anyone confirm a guessed value.
 */
export function paramsSha256(params: Readonly<Record<string, Value>>, salt: Uint8Array): string {
  return createHash("sha256").update(salt).update(canonicalParamsBytes(params)).digest("hex");
}

function encodeValue(value: Value): Buffer[] {
  const fields: Buffer[] = [];
  if (value.nullValue !== undefined) fields.push(Buffer.concat([tag("n"), Buffer.from([value.nullValue ? 1 : 0])]));
  if (value.intValue !== undefined) {
    const payload = Buffer.alloc(8);
    payload.writeBigInt64BE(BigInt.asIntN(64, value.intValue));
    fields.push(Buffer.concat([tag("i"), payload]));
  }
  if (value.doubleValue !== undefined) {
    const payload = Buffer.alloc(8);
    payload.writeDoubleBE(value.doubleValue);
    fields.push(Buffer.concat([tag("d"), payload]));
  }
  if (value.stringValue !== undefined) {
    const text = Buffer.from(value.stringValue, "utf8");
    fields.push(Buffer.concat([tag("s"), u32(text.length), text]));
  }
  if (value.bytesValue !== undefined) fields.push(Buffer.concat([tag("b"), u32(value.bytesValue.length), Buffer.from(value.bytesValue)]));
  if (value.boolValue !== undefined) fields.push(Buffer.concat([tag("t"), Buffer.from([value.boolValue ? 1 : 0])]));
  return [Buffer.from([fields.length]), ...fields];
}

function tag(letter: string): Buffer {
  return Buffer.from(letter, "ascii");
}

function u32(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n);
  return out;
}
