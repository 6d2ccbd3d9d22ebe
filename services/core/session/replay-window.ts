/** Default number of sequence numbers the window covers below the highest one seen. */
export const DEFAULT_REPLAY_WINDOW_SIZE = 4096;
/** Smallest window allowed; smaller windows reject ordinary reordering on busy streams. */
export const MIN_REPLAY_WINDOW_SIZE = 1024;

const BITS_PER_BLOCK = 32;
const BITS_PER_BLOCK_BIG = 32n;

export type ReplayCheck = "ok" | "duplicate" | "too_old";

/**
 * Anti-replay sliding window over 64-bit sequence numbers, after RFC 4303
 * section 3.4.3, with the block bitmap of RFC 6479: moving the window forward
 * clears whole 32-bit blocks instead of shifting bits. One spare block lets
 * the window cover exactly `size` numbers below the highest one accepted.
 *
 * `check` is cheap and changes nothing but the rejection counters, so the
 * receiver calls it before authenticating a frame. `accept` records the
 * number and must only follow a successful authentication.
 */
export class ReplayWindow {
  readonly size: number;
  private readonly blocks: Uint32Array;
  private readonly blockCount: bigint;
  private highest = -1n;
  private duplicateCount = 0;
  private tooOldCount = 0;

  constructor(size = DEFAULT_REPLAY_WINDOW_SIZE) {
    if (!Number.isInteger(size) || size < MIN_REPLAY_WINDOW_SIZE || size % BITS_PER_BLOCK !== 0) {
      throw new TypeError(`replay window size must be a multiple of ${BITS_PER_BLOCK} and at least ${MIN_REPLAY_WINDOW_SIZE}, got ${size}`);
    }
    this.size = size;
    this.blocks = new Uint32Array(size / BITS_PER_BLOCK + 1);
    this.blockCount = BigInt(this.blocks.length);
  }

  /** Classifies a sequence number without recording it; counts rejections. */
  check(sequence: bigint): ReplayCheck {
    if (sequence < 0n) throw new TypeError(`sequence must not be negative, got ${sequence}`);
    if (sequence > this.highest) return "ok";
    if (this.highest - sequence >= BigInt(this.size)) {
      this.tooOldCount++;
      return "too_old";
    }
    if (this.isSet(sequence)) {
      this.duplicateCount++;
      return "duplicate";
    }
    return "ok";
  }

  /** Records an authenticated sequence number; throws TypeError unless `check` would return "ok". */
  accept(sequence: bigint): void {
    if (sequence < 0n) throw new TypeError(`sequence must not be negative, got ${sequence}`);
    if (sequence > this.highest) {
      this.advanceTo(sequence);
    } else if (this.highest - sequence >= BigInt(this.size) || this.isSet(sequence)) {
      throw new TypeError(`sequence ${sequence} was not checked before accept: it is a duplicate or older than the window`);
    }
    const block = Number((sequence / BITS_PER_BLOCK_BIG) % this.blockCount);
    this.blocks[block] |= 1 << Number(sequence % BITS_PER_BLOCK_BIG);
  }

  /** Highest accepted sequence number, or -1n before the first. */
  get highestAccepted(): bigint {
    return this.highest;
  }

  get stats(): { duplicates: number; tooOld: number } {
    return { duplicates: this.duplicateCount, tooOld: this.tooOldCount };
  }

  private isSet(sequence: bigint): boolean {
    const block = Number((sequence / BITS_PER_BLOCK_BIG) % this.blockCount);
    return (this.blocks[block] & (1 << Number(sequence % BITS_PER_BLOCK_BIG))) !== 0;
  }

  /** Clears the blocks that the window slides over (RFC 6479 section 2.2). */
  private advanceTo(sequence: bigint): void {
    const newBlock = sequence / BITS_PER_BLOCK_BIG;
    const oldBlock = this.highest < 0n ? -1n : this.highest / BITS_PER_BLOCK_BIG;
    let toClear = newBlock - oldBlock;
    if (toClear > this.blockCount) toClear = this.blockCount;
    for (let i = 1n; i <= toClear; i++) {
      this.blocks[Number((oldBlock + i) % this.blockCount)] = 0;
    }
    this.highest = sequence;
  }
}
