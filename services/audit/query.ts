/**
 * Reading the audit log: filtered queries and a live tail.
 *
 * Both return records only. Checkpoints occupy sequence numbers too, so the
 * sequences of consecutive records can have gaps where checkpoints sit.
 */
import { status } from "@grpc/grpc-js";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import { EwiiError } from "../core/errors.js";
import { AuditErrorCode } from "./errors.js";
import type { AuditLog } from "./log.js";

/** Records returned when a query sets no limit. */
export const DEFAULT_QUERY_LIMIT = 1000;
/** Largest limit a query may set. */
export const MAX_QUERY_LIMIT = 10_000;
/** Records read from disk at a time while a tail catches up. */
const TAIL_PAGE_RECORDS = 500;
/** Records a tail may hold for a slow reader before it ends the stream. */
export const DEFAULT_TAIL_MAX_BUFFERED_RECORDS = 10_000;

export interface AuditQuery {
  tenant?: string;
  /** SPIFFE ID of the operator caller, exact match. */
  principal?: string;
  /** SPIFFE ID of the client, exact match. */
  client?: string;
  /** "allow" or "deny". */
  decision?: string;
  /** Inclusive start. */
  fromTime?: Date;
  /** Exclusive end. */
  toTime?: Date;
  /** Only records with a greater sequence. */
  afterSequence?: bigint;
  /** At most this many records; 0 or unset means DEFAULT_QUERY_LIMIT. */
  limit?: number;
}

/** Returns stored records that match every given filter, oldest first. */
export async function queryAuditLog(log: AuditLog, query: AuditQuery): Promise<AuditRecord[]> {
  const limit = query.limit === undefined || query.limit === 0 ? DEFAULT_QUERY_LIMIT : query.limit;
  if (!Number.isInteger(limit) || limit < 0 || limit > MAX_QUERY_LIMIT) {
    throw new EwiiError(AuditErrorCode.queryInvalid, `limit ${limit} is invalid; use 1 to ${MAX_QUERY_LIMIT}, or 0 for ${DEFAULT_QUERY_LIMIT}`, { status: status.INVALID_ARGUMENT });
  }
  if (query.decision && query.decision !== "allow" && query.decision !== "deny") {
    throw new EwiiError(AuditErrorCode.queryInvalid, `decision filter ${JSON.stringify(query.decision)} is invalid; use "allow" or "deny"`, { status: status.INVALID_ARGUMENT });
  }
  const found = log.records.find(
    {
      tenant: query.tenant,
      callerSpiffeId: query.principal,
      clientSpiffeId: query.client,
      decision: query.decision,
      fromTimeMs: query.fromTime?.getTime(),
      toTimeMs: query.toTime?.getTime(),
      afterSequence: Number(query.afterSequence ?? 0n),
    },
    limit,
  );
  return log.read(found);
}

export interface TailOptions {
  /** Start after this sequence; 0 streams only records appended from now on. */
  afterSequence: bigint;
  /** Ends the tail when aborted. */
  signal?: AbortSignal;
  maxBufferedRecords?: number;
}

/**
 * Yields stored records after `afterSequence`, then every new record as it
 * becomes durable, until the signal aborts. A reader that falls more than
 * `maxBufferedRecords` behind gets ERR_AUDIT_TAIL_TOO_SLOW naming the
 * sequence to resume after.
 */
export async function* tailAuditLog(log: AuditLog, options: TailOptions): AsyncGenerator<AuditRecord> {
  const maxBuffered = options.maxBufferedRecords ?? DEFAULT_TAIL_MAX_BUFFERED_RECORDS;
  const aborted = (): boolean => options.signal?.aborted === true;
  let last = options.afterSequence === 0n ? log.head.sequence : options.afterSequence;

  // Catch up from the files until the index has nothing newer. The check
  // that finds nothing and the subscription below run in the same tick, and
  // the log updates its index and notifies listeners in one tick too, so no
  // record falls between them.
  for (;;) {
    const page = log.records.after(Number(last), TAIL_PAGE_RECORDS);
    if (page.length === 0) break;
    for (const record of await log.read(page)) {
      if (aborted()) return;
      yield record;
      last = record.sequence;
    }
  }

  let buffered: AuditRecord[] = [];
  let overflow = false;
  let wake: (() => void) | undefined;
  const unsubscribe = log.subscribe((records) => {
    buffered.push(...records);
    if (buffered.length > maxBuffered) overflow = true;
    wake?.();
  });
  const onAbort = (): void => wake?.();
  options.signal?.addEventListener("abort", onAbort);
  try {
    while (!aborted()) {
      if (overflow) {
        throw new EwiiError(AuditErrorCode.tailTooSlow, `the tail reader fell more than ${maxBuffered} records behind; reconnect with after_sequence ${last}`, { status: status.RESOURCE_EXHAUSTED });
      }
      if (buffered.length === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
        continue;
      }
      const batch = buffered;
      buffered = [];
      for (const record of batch) {
        if (record.sequence <= last) continue;
        yield record;
        last = record.sequence;
        if (aborted()) return;
      }
    }
  } finally {
    unsubscribe();
    options.signal?.removeEventListener("abort", onAbort);
  }
}
