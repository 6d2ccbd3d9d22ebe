import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { pathToFileURL } from "node:url";
import { Role } from "../gen/ewii/tunnel/v1/tunnel.js";
import { Session } from "../services/core/session/index.js";

/**
 * Throughput of Session.sealBytes + Session.openBytes against raw
 * node:crypto ChaCha20-Poly1305 seal + open of the same sizes, in one run.
 *
 * What is measured: an already-encoded payload is sealed by one session end
 * and opened by the other (nonce and associated data building, replay window,
 * frame checks, one AEAD pass each way). Protobuf encoding of SessionMessage
 * and the handshake are not included. MB/s counts payload bytes (10^6) per
 * second of seal + open. The two session ends get random keys directly,
 * without a handshake, because only the frame path is timed.
 *
 * Run alone: node --import tsx bench/session.ts [seconds]
 */

const FRAME_SIZES_BYTES = [64, 1024, 16 * 1024, 64 * 1024, 1024 * 1024];
const RATIO_BUDGET_MIN_FRAME_BYTES = 16 * 1024;
const RATIO_BUDGET = 0.9;
/**
 * Rounds that alternate session and raw runs per size, so drift in machine
 * load hits both. The figures are medians over rounds, so a round slowed by a
 * garbage collection or a neighbouring process does not set the result.
 */
const ROUNDS_PER_SIZE = 8;
const BYTES_PER_TIME_CHECK = 256 * 1024;

export interface BenchResult {
  name: string;
  figures: Record<string, number>;
  budgets: { name: string; value: number; limit: number; ok: boolean }[];
}

function sizeLabel(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${bytes / (1024 * 1024)}MiB`;
  if (bytes >= 1024) return `${bytes / 1024}KiB`;
  return `${bytes}B`;
}

/** Runs `step` repeatedly for about `durationMs` and returns [payload bytes, elapsed ms]. */
function timeLoop(durationMs: number, frameBytes: number, step: () => void): [number, number] {
  const batch = Math.max(1, Math.floor(BYTES_PER_TIME_CHECK / frameBytes));
  const start = performance.now();
  let frames = 0;
  let elapsed = 0;
  do {
    for (let i = 0; i < batch; i++) step();
    frames += batch;
    elapsed = performance.now() - start;
  } while (elapsed < durationMs);
  return [frames * frameBytes, elapsed];
}

function sessionPair(maxFrameBytes: number): { sender: Session; receiver: Session } {
  const id = randomBytes(16);
  const hubToClient = randomBytes(32);
  const clientToHub = randomBytes(32);
  const common = { id, peerSerial: "00", limits: { maxFrameBytes } };
  return {
    sender: new Session({ ...common, role: Role.ROLE_HUB, sendKey: Uint8Array.from(hubToClient), receiveKey: Uint8Array.from(clientToHub), peerSpiffeId: "spiffe://bench.test/client" }),
    receiver: new Session({ ...common, role: Role.ROLE_CLIENT, sendKey: Uint8Array.from(clientToHub), receiveKey: Uint8Array.from(hubToClient), peerSpiffeId: "spiffe://bench.test/hub" }),
  };
}

/** Raw node:crypto seal + open with a fresh nonce per frame, nothing else. */
function rawStep(key: Buffer, payload: Buffer, aad: Buffer): () => void {
  const nonce = Buffer.alloc(12);
  let counter = 0n;
  return () => {
    nonce.writeBigUInt64BE(counter++, 4);
    const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    cipher.setAAD(aad, { plaintextLength: payload.length });
    const body = cipher.update(payload);
    cipher.final();
    const tag = cipher.getAuthTag();
    const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    decipher.setAuthTag(tag);
    decipher.setAAD(aad, { plaintextLength: body.length });
    decipher.update(body);
    decipher.final();
  };
}

export async function runSessionBench(options: { seconds: number }): Promise<BenchResult> {
  const figures: Record<string, number> = {};
  const budgets: BenchResult["budgets"] = [];
  const segmentMs = (options.seconds * 1000) / (FRAME_SIZES_BYTES.length * ROUNDS_PER_SIZE * 2);

  for (const frameBytes of FRAME_SIZES_BYTES) {
    const payload = randomBytes(frameBytes);
    const { sender, receiver } = sessionPair(Math.max(frameBytes, 1024));
    const sessionStep = (): void => {
      receiver.openBytes(sender.sealBytes(payload));
    };
    const raw = rawStep(randomBytes(32), payload, randomBytes(29));

    // Warm-up so that JIT compilation is not timed.
    timeLoop(Math.min(50, segmentMs), frameBytes, sessionStep);
    timeLoop(Math.min(50, segmentMs), frameBytes, raw);

    const sessionRounds: number[] = [];
    const rawRounds: number[] = [];
    for (let round = 0; round < ROUNDS_PER_SIZE; round++) {
      sessionRounds.push(megabytesPerSecond(timeLoop(segmentMs, frameBytes, sessionStep)));
      rawRounds.push(megabytesPerSecond(timeLoop(segmentMs, frameBytes, raw)));
      // Yield between rounds so a caller's timers and I/O are not starved.
      await new Promise((resolve) => setImmediate(resolve));
    }

    const label = sizeLabel(frameBytes);
    const sessionMbps = median(sessionRounds);
    const rawMbps = median(rawRounds);
    const ratio = sessionMbps / rawMbps;
    figures[`session_seal_open_mbps_${label}`] = round2(sessionMbps);
    figures[`raw_chacha20_poly1305_mbps_${label}`] = round2(rawMbps);
    figures[`session_to_raw_ratio_${label}`] = round2(ratio);
    if (frameBytes >= RATIO_BUDGET_MIN_FRAME_BYTES) {
      budgets.push({ name: `session_to_raw_ratio_${label}`, value: round2(ratio), limit: RATIO_BUDGET, ok: ratio >= RATIO_BUDGET });
    }
  }
  return { name: "session", figures, budgets };
}

function megabytesPerSecond([bytes, elapsedMs]: [number, number]): number {
  return bytes / 1e6 / (elapsedMs / 1000);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.argv[2] ?? "10");
  const result = await runSessionBench({ seconds });
  console.log(JSON.stringify(result, null, 2));
  process.exitCode = result.budgets.every((budget) => budget.ok) ? 0 : 1;
}
