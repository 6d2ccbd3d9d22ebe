import { status } from "@grpc/grpc-js";
import { EwiiError } from "../../core/errors.js";

/**
 * Request ids the client has seen, so that no id runs twice. An id is kept
 * until its request's deadline or `retentionMs` after receipt, whichever is
 * later, up to `maxRetentionMs`. When the set contains `maxEntries` unexpired
 * ids, new requests are rejected rather than forgetting an id early.
 */
export class SeenRequestIds {
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly options: { retentionMs: number; maxRetentionMs: number; maxEntries: number; now: () => Date },
  ) {}

  /** Records an id. Throws ERR_QUERY_DUPLICATE_REQUEST for an id already seen, ERR_CLIENT_BUSY when full. */
  claim(requestIdHex: string, deadlineUnixMs: number): void {
    const nowMs = this.options.now().getTime();
    const known = this.expiries.get(requestIdHex);
    if (known !== undefined && known > nowMs) {
      throw new EwiiError("ERR_QUERY_DUPLICATE_REQUEST", `request id ${requestIdHex} was already received; send each query with a new random request id`, {
        status: status.ALREADY_EXISTS,
      });
    }
    if (this.expiries.size >= this.options.maxEntries) this.sweep(nowMs);
    if (this.expiries.size >= this.options.maxEntries) {
      throw new EwiiError("ERR_CLIENT_BUSY", `the request id store is full with ${this.options.maxEntries} unexpired ids; retry once the oldest expire`, {
        status: status.RESOURCE_EXHAUSTED,
      });
    }
    const expiry = Math.min(Math.max(deadlineUnixMs, nowMs + this.options.retentionMs), nowMs + this.options.maxRetentionMs);
    this.expiries.set(requestIdHex, expiry);
  }

  get size(): number {
    return this.expiries.size;
  }

  private sweep(nowMs: number): void {
    for (const [id, expiry] of this.expiries) {
      if (expiry <= nowMs) this.expiries.delete(id);
    }
  }
}
