/**
 * Verification of an audit log: hash chain, sequence continuity, checkpoint
 * signatures, client result signatures and truncation against a trusted
 * head. Works on a data directory (a live one or a copy) and on entries
 * already in memory.
 *
 * Truncation is only visible against a head known from elsewhere: the
 * live log's head, `latest-checkpoint.json` in the directory, or an anchor
 * the caller kept (for example a checkpoint exported to a SIEM). Someone who
 * can rewrite the whole directory can remove a tail and those hints with it,
 * so only an anchor kept outside the directory detects that.
 */
import type { KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import { checkpointSignatureValid } from "./checkpoint.js";
import { ENTRY_KIND_CHECKPOINT, ENTRY_KIND_RECORD, GENESIS_HASH, decodeRecord, encodeRecordFields, entryHash, entrySequence, parseEntryLine } from "./entry.js";
import type { StoredEntry } from "./entry.js";
import { LATEST_CHECKPOINT_FILE } from "./log.js";
import { listSegments, splitLines } from "./segments.js";

export type VerifyProblem = "altered" | "missing" | "reordered" | "truncated" | "bad_signature";

export interface VerifyOptions {
  /** First sequence to check; entries before it only provide the chain link. */
  from?: bigint;
  /** Last sequence to check. */
  to?: bigint;
  /** Ed25519 public key of the audit node's checkpoint key. */
  publicKey: KeyObject;
  /**
   * Checks a record's client result signature (`client_signature` over the
   * signed summary, with `client_cert_der`). Without it, signed records are
   * counted as unchecked.
   */
  verifyClientSignature?: (record: AuditRecord) => boolean;
  /**
   * A head known from outside the files: the log must reach `sequence` and
   * hold `hash` there. In a directory, `latest-checkpoint.json` is used when
   * no anchor is given.
   */
  anchor?: { sequence: bigint; hash: string };
}

export interface VerifyResult {
  ok: boolean;
  /** Entries checked (records and checkpoints) within the range. */
  checked: number;
  checkpoints: number;
  clientSignaturesChecked: number;
  clientSignaturesUnchecked: number;
  /** Bytes of an unterminated last line: a write cut short by a crash, never acknowledged. */
  tornTailBytes: number;
  firstBadSequence?: bigint;
  problem?: VerifyProblem;
  detail: string;
}

/** One entry to check, or a line that did not parse, with where it came from. */
interface Item {
  entry?: StoredEntry;
  where: string;
}

/** Converts a record (for example one returned by Query) back to its stored form. */
export function recordToEntry(record: AuditRecord): StoredEntry {
  return {
    ...encodeRecordFields(record),
    sequence: record.sequence.toString(10),
    time: record.time === undefined ? "" : record.time.toISOString(),
    previous_hash: record.previousHash,
    hash: record.hash,
  };
}

/**
 * Verifies a log directory or a list of stored entries in sequence order.
 * Stops at the first problem and reports its sequence.
 */
export async function verifyAuditLog(source: string | readonly StoredEntry[], options: VerifyOptions): Promise<VerifyResult> {
  let items: Item[];
  let tornTailBytes = 0;
  let anchor = options.anchor;
  let anchorEntry: StoredEntry | undefined;
  if (typeof source === "string") {
    const read = await readDirectory(source);
    items = read.items;
    tornTailBytes = read.tornTailBytes;
    if (anchor === undefined && read.latestCheckpoint !== undefined) {
      anchorEntry = read.latestCheckpoint;
      anchor = { sequence: entrySequence(anchorEntry) ?? 0n, hash: String(anchorEntry.hash) };
    }
  } else {
    items = source.map((entry, i) => ({ entry, where: `entry ${i}` }));
  }
  return new Walk(items, options, typeof source === "string").run(anchor, anchorEntry, tornTailBytes);
}

class Walk {
  private readonly counts = { checked: 0, checkpoints: 0, clientSignaturesChecked: 0, clientSignaturesUnchecked: 0 };
  private readonly from: bigint;
  private readonly to: bigint | undefined;

  constructor(
    private readonly items: Item[],
    private readonly options: VerifyOptions,
    private readonly fromStart: boolean,
  ) {
    this.from = options.from !== undefined && options.from > 0n ? options.from : 1n;
    this.to = options.to !== undefined && options.to > 0n ? options.to : undefined;
  }

  run(anchor: VerifyOptions["anchor"], anchorEntry: StoredEntry | undefined, tornTailBytes: number): VerifyResult {
    const done = (problem?: VerifyProblem, sequence?: bigint, detail = ""): VerifyResult => ({
      ok: problem === undefined,
      ...this.counts,
      tornTailBytes,
      ...(problem === undefined ? {} : { problem, firstBadSequence: sequence }),
      detail: problem === undefined ? `${this.counts.checked} entries intact` : detail,
    });

    const present = new Set<bigint>();
    for (const item of this.items) {
      const sequence = item.entry === undefined ? undefined : entrySequence(item.entry);
      if (sequence !== undefined) present.add(sequence);
    }
    const first = this.items[0]?.entry;
    let expected = this.fromStart ? 1n : (first === undefined ? undefined : entrySequence(first)) ?? 1n;
    let previousHash: string | undefined = expected === 1n ? GENESIS_HASH : undefined;
    let logId: string | undefined;
    const stored = new Map<bigint, string>();

    for (const item of this.items) {
      if (this.to !== undefined && expected > this.to) break;
      const entry = item.entry;
      const sequence = entry === undefined ? undefined : entrySequence(entry);
      if (sequence !== undefined && sequence < this.from && entry !== undefined) {
        // Before the range: only the stored hash matters, as the link for `from`.
        previousHash = String(entry.hash);
        expected = sequence + 1n;
        continue;
      }
      if (entry === undefined || sequence === undefined) {
        return done("altered", expected, `${item.where} is not a valid audit entry`);
      }
      if (sequence !== expected) {
        if (sequence < expected) return done("reordered", sequence, `sequence ${sequence} appears at ${item.where}, after sequence ${expected - 1n}`);
        if (present.has(expected)) return done("reordered", expected, `sequence ${sequence} appears at ${item.where} where ${expected} belongs; ${expected} comes later`);
        return done("missing", expected, `sequence ${expected} is missing: ${item.where} holds ${sequence}`);
      }
      if (entryHash(entry) !== entry.hash) {
        return done("altered", sequence, `the hash of sequence ${sequence} at ${item.where} does not match its contents`);
      }
      if (previousHash !== undefined && entry.previous_hash !== previousHash) {
        return done("altered", sequence - 1n, `sequence ${sequence - 1n} was changed or replaced: its hash does not match previous_hash of ${sequence}`);
      }

      if (entry.kind === ENTRY_KIND_CHECKPOINT) {
        logId ??= String(entry.log_id);
        if (entry.log_id !== logId) return done("altered", sequence, `checkpoint ${sequence} names log ${String(entry.log_id)}, earlier checkpoints name ${logId}`);
        if (!checkpointSignatureValid(entry, this.options.publicKey)) {
          return done("bad_signature", sequence, `the signature of checkpoint ${sequence} does not verify with the given public key`);
        }
        this.counts.checkpoints += 1;
      } else if (entry.kind === ENTRY_KIND_RECORD) {
        if (!this.clientSignatureValid(entry)) {
          return done("bad_signature", sequence, `the client result signature of sequence ${sequence} does not verify`);
        }
      } else {
        return done("altered", sequence, `sequence ${sequence} has unknown kind ${JSON.stringify(entry.kind)}`);
      }

      stored.set(sequence, String(entry.hash));
      previousHash = String(entry.hash);
      this.counts.checked += 1;
      expected += 1n;
    }

    if (anchor !== undefined && (this.to === undefined || this.to >= anchor.sequence)) {
      const last = expected - 1n;
      if (anchorEntry !== undefined && !checkpointSignatureValid(anchorEntry, this.options.publicKey)) {
        return done("bad_signature", anchor.sequence, `${LATEST_CHECKPOINT_FILE} (checkpoint ${anchor.sequence}) has a signature that does not verify`);
      }
      if (anchor.sequence > last) {
        return done("truncated", last + 1n, `the log ends at sequence ${last} but a trusted checkpoint or head reaches ${anchor.sequence}`);
      }
      const hash = stored.get(anchor.sequence);
      if (hash !== undefined && hash !== anchor.hash) {
        return done("altered", anchor.sequence, `sequence ${anchor.sequence} differs from the trusted checkpoint or head`);
      }
    }
    return done();
  }

  private clientSignatureValid(entry: StoredEntry): boolean {
    if (entry.client_signature === undefined) return true;
    if (this.options.verifyClientSignature === undefined) {
      this.counts.clientSignaturesUnchecked += 1;
      return true;
    }
    this.counts.clientSignaturesChecked += 1;
    return this.options.verifyClientSignature(decodeRecord(entry));
  }
}

/**
 * Reads every segment of a directory. A last line without its newline in
 * the last segment is a torn write and is left out. Anywhere else such a
 * line is kept as an unparsed item, which verification reports as altered.
 */
async function readDirectory(dir: string): Promise<{ items: Item[]; tornTailBytes: number; latestCheckpoint?: StoredEntry }> {
  const segments = await listSegments(dir);
  const items: Item[] = [];
  let tornTailBytes = 0;
  for (let s = 0; s < segments.length; s++) {
    const lines = splitLines(await readFile(join(dir, segments[s])));
    for (const line of lines) {
      if (!line.complete && s === segments.length - 1) {
        tornTailBytes = line.length;
        continue;
      }
      items.push({ entry: line.complete ? parseEntryLine(line.text) : undefined, where: `${segments[s]} byte ${line.offset}` });
    }
  }
  let latestCheckpoint: StoredEntry | undefined;
  try {
    latestCheckpoint = parseEntryLine((await readFile(join(dir, LATEST_CHECKPOINT_FILE), "utf8")).trim());
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  return { items, tornTailBytes, ...(latestCheckpoint === undefined ? {} : { latestCheckpoint }) };
}
