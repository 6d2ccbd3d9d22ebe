/**
 * Reads stored entries (records and checkpoints) from the segment files in
 * sequence order, for exporters. It reads the files, never the append path,
 * so a slow reader cannot slow appends. Callers pass the durable head, and
 * the reader returns nothing after it: bytes past it may not be synced yet.
 */
import { open } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { entrySequence, parseEntryLine } from "../entry.js";
import type { StoredEntry } from "../entry.js";
import { logCorrupt } from "../errors.js";
import { listSegments } from "../segments.js";

/** Bytes read from a segment per call. */
const READ_CHUNK_BYTES = 1024 * 1024;

export interface ReadEntry {
  entry: StoredEntry;
  /** The stored line without its newline. */
  line: string;
  sequence: bigint;
}

export class EntryReader {
  private file: FileHandle | undefined;
  private position = 0;
  private next: bigint;

  /** Reads entries after `afterSequence` from the log in `dir`. */
  constructor(private readonly dir: string, afterSequence: bigint) {
    this.next = afterSequence + 1n;
  }

  /** Returns up to `limit` entries from the next sequence on, none beyond `headSequence`. */
  async read(headSequence: bigint, limit: number): Promise<ReadEntry[]> {
    const out: ReadEntry[] = [];
    while (out.length < limit && this.next <= headSequence) {
      if (this.file === undefined && !(await this.openSegmentFor(this.next))) break;
      const chunk = Buffer.alloc(READ_CHUNK_BYTES);
      const { bytesRead } = await this.file!.read(chunk, 0, READ_CHUNK_BYTES, this.position);
      const end = chunk.lastIndexOf(0x0a, bytesRead - 1);
      if (bytesRead === 0 || end === -1) {
        // The segment is exhausted, so the next sequence must start the following one.
        await this.closeFile();
        if (!(await this.openSegmentFor(this.next, true))) break;
        continue;
      }
      let start = 0;
      while (start <= end && out.length < limit && this.next <= headSequence) {
        const stop = chunk.indexOf(0x0a, start);
        const line = chunk.toString("utf8", start, stop);
        const entry = parseEntryLine(line);
        const sequence = entry === undefined ? undefined : entrySequence(entry);
        if (entry === undefined || sequence === undefined) throw logCorrupt(`an audit segment line at byte ${this.position + start} in ${this.dir} is not an entry; run \`ewii audit verify\``);
        if (sequence >= this.next) {
          if (sequence !== this.next) throw logCorrupt(`the audit log skips from sequence ${this.next - 1n} to ${sequence}; run \`ewii audit verify\``);
          out.push({ entry, line, sequence });
          this.next += 1n;
        }
        start = stop + 1;
      }
      this.position += start;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.closeFile();
  }

  private async closeFile(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    await file?.close();
  }

  /**
   * Opens the segment that contains `sequence`, or with `exact` the one
   * that starts at it. Returns false when no segment does yet.
   */
  private async openSegmentFor(sequence: bigint, exact = false): Promise<boolean> {
    let chosen: string | undefined;
    for (const name of await listSegments(this.dir)) {
      const first = BigInt(name.slice("segment-".length, -".jsonl".length));
      if (first > sequence) break;
      if (!exact || first === sequence) chosen = name;
    }
    if (chosen === undefined) return false;
    this.file = await open(join(this.dir, chosen), "r");
    this.position = 0;
    return true;
  }
}
