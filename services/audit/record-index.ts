/**
 * In-memory index of stored records, rebuilt from the segment files at
 * open. It keeps the fields that queries filter on and where each record
 * sits on disk; record bodies are read from the files on demand.
 *
 * NOTE: the index costs roughly 100-200 bytes of heap per record (an
 * estimate, not measured), so a node that keeps tens of millions of records
 * needs an on-disk index instead.
 */
import type { StoredEntry } from "./entry.js";

export interface IndexedRecord {
  sequence: number;
  /** Record time in milliseconds since the Unix epoch. */
  timeMs: number;
  tenant: string;
  callerSpiffeId: string;
  clientSpiffeId: string;
  decision: string;
  /** Position of the segment in the log's segment list. */
  segment: number;
  /** Byte offset of the line in its segment file. */
  offset: number;
  /** Line length in bytes, newline included. */
  length: number;
}

export interface RecordFilter {
  tenant?: string;
  callerSpiffeId?: string;
  clientSpiffeId?: string;
  decision?: string;
  /** Inclusive start, milliseconds since the Unix epoch. */
  fromTimeMs?: number;
  /** Exclusive end, milliseconds since the Unix epoch. */
  toTimeMs?: number;
  /** Only records with a greater sequence. */
  afterSequence?: number;
}

export class RecordIndex {
  private readonly records: IndexedRecord[] = [];
  // Each distinct tenant or SPIFFE ID is stored once, because a log repeats
  // a few of them millions of times.
  private readonly strings = new Map<string, string>();

  get size(): number {
    return this.records.length;
  }

  /** Adds a stored record entry located at `segment`/`offset`. Sequences must increase. */
  add(entry: StoredEntry, segment: number, offset: number, length: number): void {
    this.records.push({
      sequence: Number(entry.sequence),
      timeMs: Date.parse(String(entry.time)),
      tenant: this.intern(entry.tenant),
      callerSpiffeId: this.intern(entry.caller_spiffe_id),
      clientSpiffeId: this.intern(entry.client_spiffe_id),
      decision: this.intern(entry.decision),
      segment,
      offset,
      length,
    });
  }

  /** Returns up to `limit` records matching every set filter, oldest first. */
  find(filter: RecordFilter, limit: number): IndexedRecord[] {
    const found: IndexedRecord[] = [];
    for (let i = this.firstAfter(filter.afterSequence ?? 0); i < this.records.length && found.length < limit; i++) {
      const record = this.records[i];
      if (matches(record, filter)) found.push(record);
    }
    return found;
  }

  /** Returns the records with sequence greater than `afterSequence`, at most `limit`. */
  after(afterSequence: number, limit: number): IndexedRecord[] {
    const start = this.firstAfter(afterSequence);
    return this.records.slice(start, start + limit);
  }

  /** Binary search for the position of the first record with a sequence above `sequence`. */
  private firstAfter(sequence: number): number {
    let low = 0;
    let high = this.records.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.records[middle].sequence <= sequence) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private intern(value: string | number | undefined): string {
    const text = value === undefined ? "" : String(value);
    const known = this.strings.get(text);
    if (known !== undefined) return known;
    this.strings.set(text, text);
    return text;
  }
}

function matches(record: IndexedRecord, filter: RecordFilter): boolean {
  if (filter.tenant && record.tenant !== filter.tenant) return false;
  if (filter.callerSpiffeId && record.callerSpiffeId !== filter.callerSpiffeId) return false;
  if (filter.clientSpiffeId && record.clientSpiffeId !== filter.clientSpiffeId) return false;
  if (filter.decision && record.decision !== filter.decision) return false;
  if (filter.fromTimeMs !== undefined && record.timeMs < filter.fromTimeMs) return false;
  if (filter.toTimeMs !== undefined && record.timeMs >= filter.toTimeMs) return false;
  return true;
}
