/**
 * The append path's fast form of a record entry: its canonical JSON is
 * built once when the record is validated, split at the three chain fields
 * (`previous_hash`, `sequence`, `time`) that only the log writer sets.
 * Sealing then concatenates the parts, hashes once and writes the line.
 *
 * The result is byte for byte what `sealEntry` in entry.ts produces for the
 * same entry (JCS key order, JSON.stringify string escaping), so the hash
 * chain and `ewii audit verify` do not depend on which path wrote a line.
 * test/audit/sealed-record.test.ts compares both paths.
 */
import { hash } from "node:crypto";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import { RECORD_KEYS_SORTED } from "./entry.js";
import type { StoredEntry } from "./entry.js";

/** The chain fields, which split a record's canonical JSON into four parts. */
const CHAIN_KEY_SET: ReadonlySet<string> = new Set(["previous_hash", "sequence", "time"]);

/** A validated record waiting for its place in the chain. */
export interface PreparedRecord {
  /** Stored fields without the chain fields, which the writer adds in place. */
  entry: StoredEntry;
  /** The validated record as returned to the caller once durable. */
  record: AuditRecord;
  /**
   * Canonical JSON around the chain fields: "{" + parts[0] + previous_hash
   * + parts[1] + sequence + parts[2] + time + parts[3], without the final "}".
   */
  parts: [string, string, string, string];
  /** UTF-8 length of the parts together, in bytes. */
  partsBytes: number;
}

/**
 * Builds the canonical JSON parts of a record entry that lacks the chain
 * fields. Every key must be one of RECORD_KEYS_SORTED, as entries from
 * `encodeRecordFields` are, so the keys need no sorting here.
 */
export function prepareSeal(entry: StoredEntry, record: AuditRecord): PreparedRecord {
  const runs: string[] = [""];
  let written = 0;
  let separator = "";
  for (const key of RECORD_KEYS_SORTED) {
    if (CHAIN_KEY_SET.has(key)) {
      if (entry[key] !== undefined) throw new TypeError(`prepareSeal: the entry already has ${key}`);
      runs[runs.length - 1] += separator;
      runs.push("");
      separator = ",";
      continue;
    }
    const value = entry[key];
    if (value === undefined) continue;
    runs[runs.length - 1] += `${separator}"${key}":${JSON.stringify(value)}`;
    separator = ",";
    written += 1;
  }
  let keys = 0;
  for (const _key in entry) keys += 1;
  if (keys !== written) throw new TypeError("prepareSeal: the entry has a key that is not a record field");

  const parts: [string, string, string, string] = [runs[0], runs[1], runs[2], runs[3]];
  const partsBytes = Buffer.byteLength(parts[0], "utf8") + Buffer.byteLength(parts[1], "utf8") + Buffer.byteLength(parts[2], "utf8") + Buffer.byteLength(parts[3], "utf8");
  return { entry, record, parts, partsBytes };
}

/** A sealed record line and its length. */
export interface SealedLine {
  line: string;
  /** UTF-8 length of `line`, newline included, in bytes. */
  bytes: number;
}

/**
 * Adds the chain fields to a prepared record, sets `entry.hash` and the
 * record's service-set fields, and returns the stored line. `timeText` is
 * RFC 3339 with milliseconds, `time` the same instant.
 */
export function sealPrepared(prepared: PreparedRecord, sequence: bigint, time: Date, timeText: string, previousHash: string): SealedLine {
  const sequenceText = sequence.toString(10);
  const { parts, entry, record } = prepared;
  // The chain values are ASCII (hexadecimal, decimal, RFC 3339), so they need no escaping.
  const open = `{${parts[0]}"previous_hash":"${previousHash}"${parts[1]}"sequence":"${sequenceText}"${parts[2]}"time":"${timeText}"${parts[3]}`;
  const entryHash = hash("sha256", `${open}}`, "hex");
  const line = `${open},"hash":"${entryHash}"}\n`;

  entry.previous_hash = previousHash;
  entry.sequence = sequenceText;
  entry.time = timeText;
  entry.hash = entryHash;
  record.sequence = sequence;
  record.time = new Date(time.getTime());
  record.previousHash = previousHash;
  record.hash = entryHash;

  const chainBytes = line.length - (parts[0].length + parts[1].length + parts[2].length + parts[3].length);
  return { line, bytes: prepared.partsBytes + chainBytes };
}
