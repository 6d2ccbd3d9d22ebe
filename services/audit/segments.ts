/**
 * Segment files of the audit log and the scan that runs at open.
 *
 * A log directory contains `segment-<first sequence, 20 digits>.jsonl` files.
 * Each line is one entry (see entry.ts) in JCS canonical JSON followed by
 * "\n". Only the last segment is ever appended to; a new segment starts when
 * the current one reaches the size limit.
 */
import { open, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../core/log.js";
import { LogField } from "../core/log.js";
import { ENTRY_KIND_RECORD, GENESIS_HASH, entryHash, entrySequence, parseEntryLine } from "./entry.js";
import type { StoredEntry } from "./entry.js";
import { logCorrupt } from "./errors.js";

const SEGMENT_PATTERN = /^segment-(\d{20})\.jsonl$/;
const NEWLINE = 0x0a;

/** Returns the file name of the segment whose first entry has `firstSequence`. */
export function segmentName(firstSequence: bigint): string {
  return `segment-${firstSequence.toString(10).padStart(20, "0")}.jsonl`;
}

/** Lists the segment file names of a log directory in sequence order. */
export async function listSegments(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((name) => SEGMENT_PATTERN.test(name));
  return names.sort();
}

/** One line of a segment file. */
export interface SegmentLine {
  /** Byte offset of the line in the file. */
  offset: number;
  /** Length in bytes, newline included when present. */
  length: number;
  /** False for a last line without its newline. */
  complete: boolean;
  text: string;
}

/** Splits a segment file's bytes into lines. */
export function splitLines(bytes: Buffer): SegmentLine[] {
  const lines: SegmentLine[] = [];
  let start = 0;
  while (start < bytes.length) {
    const end = bytes.indexOf(NEWLINE, start);
    const complete = end !== -1;
    const stop = complete ? end : bytes.length;
    lines.push({ offset: start, length: stop - start + (complete ? 1 : 0), complete, text: bytes.toString("utf8", start, stop) });
    start = stop + 1;
  }
  return lines;
}

/** Flushes a directory's entries (new or renamed files) to disk. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Result of the open-time scan: the chain head and the segment list. */
export interface ScanResult {
  segments: string[];
  /** Size in bytes of the last segment after any repair. */
  lastSegmentBytes: number;
  headSequence: bigint;
  headHash: string;
  /** Records since the last checkpoint. */
  recordsSinceCheckpoint: number;
}

export interface ScanOptions {
  dir: string;
  logger: Logger;
  /**
   * Bytes at the end of the last segment within which a bad entry counts as
   * a torn write and is cut off: the largest batch the log writes at once.
   * A bad entry earlier than that cannot come from an interrupted write.
   */
  tornWindowBytes: number;
  /** Called for every record entry in order. */
  onRecord(entry: StoredEntry, segment: number, offset: number, length: number): void;
}

/**
 * Reads every segment, checks sequence continuity and hash links, and cuts
 * a torn tail off the last segment. The tail's bytes are kept next to the
 * segment as `<segment>.torn-<offset>` for inspection. Any other damage
 * throws ERR_AUDIT_LOG_CORRUPT: the log must not silently drop records that
 * were acknowledged.
 *
 * Entry hashes are recomputed only inside the torn window; `ewii audit
 * verify` checks every hash.
 */
export async function scanSegments(options: ScanOptions): Promise<ScanResult> {
  const segments = await listSegments(options.dir);
  let headSequence = 0n;
  let headHash = GENESIS_HASH;
  let recordsSinceCheckpoint = 0;
  let lastSegmentBytes = 0;

  for (let segment = 0; segment < segments.length; segment++) {
    const path = join(options.dir, segments[segment]);
    const bytes = await readFile(path);
    const isLast = segment === segments.length - 1;
    lastSegmentBytes = bytes.length;

    for (const line of splitLines(bytes)) {
      const inTornWindow = isLast && line.offset >= bytes.length - options.tornWindowBytes;
      const entry = line.complete ? parseEntryLine(line.text) : undefined;
      const problem = entryProblem(entry, headSequence, headHash, inTornWindow);
      if (problem === undefined && entry !== undefined) {
        headSequence += 1n;
        headHash = String(entry.hash);
        if (entry.kind === ENTRY_KIND_RECORD) {
          recordsSinceCheckpoint += 1;
          options.onRecord(entry, segment, line.offset, line.length);
        } else {
          recordsSinceCheckpoint = 0;
        }
        continue;
      }
      if (!inTornWindow) {
        throw logCorrupt(
          `audit segment ${path} is damaged at byte ${line.offset} (after sequence ${headSequence}): ${problem}; ` +
            "the damage is too far from the end to be an interrupted write, so the log will not open; run `ewii audit verify --dir` and restore the file from a copy",
        );
      }
      await cutTornTail(path, bytes, line.offset);
      options.logger.warn("cut a torn tail off the audit log", {
        file: path,
        offset: line.offset,
        bytes_cut: bytes.length - line.offset,
        reason: problem,
        [LogField.sequence]: headSequence.toString(10),
      });
      lastSegmentBytes = line.offset;
      break;
    }
  }
  return { segments, lastSegmentBytes, headSequence, headHash, recordsSinceCheckpoint };
}

function entryProblem(entry: StoredEntry | undefined, headSequence: bigint, headHash: string, checkHash: boolean): string | undefined {
  if (entry === undefined) return "the line is incomplete or not a JSON entry";
  const sequence = entrySequence(entry);
  if (sequence !== headSequence + 1n) return `sequence ${String(entry.sequence)} follows ${headSequence}`;
  if (entry.previous_hash !== headHash) return "previous_hash does not match the entry before it";
  if (typeof entry.hash !== "string") return "the hash is missing";
  if (checkHash && entryHash(entry) !== entry.hash) return "the hash does not match the entry";
  return undefined;
}

async function cutTornTail(path: string, bytes: Buffer, offset: number): Promise<void> {
  await writeFile(`${path}.torn-${offset}`, bytes.subarray(offset), { mode: 0o600 });
  const handle = await open(path, "r+");
  try {
    await handle.truncate(offset);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
