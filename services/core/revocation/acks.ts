import { Cluster, type Redis } from "ioredis";
import { asError } from "../errors.js";
import { LogField, type Logger } from "../log.js";
import type { RedisConnection, RedisConnector } from "./redis-connection.js";
import { quietly } from "./redis-bus.js";

/** Redis pub/sub channel where relays and hubs report each enforced revocation (JSON). */
export const REVOCATION_ACK_CHANNEL = "ewii:revocation-acks";
/** Prefix of the keys where each relay and hub stores its applied revocation sequence (JSON). */
export const REVOCATION_SEQUENCE_KEY_PREFIX = "ewii:revocation-seq:";
/** Default interval between sequence heartbeats, in milliseconds. Keys expire after three intervals. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000;

export type RevocationNodeRole = "relay" | "hub";

/** One relay's or hub's enforcement report for one revocation. */
export interface RevocationAck {
  node_id: string;
  role: RevocationNodeRole;
  sequence: number;
  /** Client streams closed (relays). */
  streams_closed: number;
  /** End-to-end sessions closed: hub sessions on a relay, client sessions on a hub. */
  sessions_closed: number;
  /** In-flight queries aborted (hubs). */
  queries_aborted: number;
  /** ISO 8601 time of enforcement. */
  at: string;
}

/** The revocation state a relay or hub last reported. */
export interface RevocationHeartbeat {
  node_id: string;
  role: RevocationNodeRole;
  sequence: number;
  stale: boolean;
  /** ISO 8601 time of the report. */
  updated_at: string;
}

export interface RevocationReporterOptions {
  connect: RedisConnector;
  nodeId: string;
  role: RevocationNodeRole;
  logger: Logger;
  /** Current applied sequence and staleness, read at each heartbeat. */
  state: () => { sequence: number; stale: boolean };
  heartbeatIntervalMs?: number;
  now?: () => Date;
}

/**
 * Reports a relay's or hub's revocation enforcement on Redis, for
 * `ewii revoke` and `ewii revocation status`. Reports are best effort: a
 * failed one is logged at debug level and never affects enforcement.
 */
export class RevocationReporter {
  private readonly connection: RedisConnection;
  private readonly timer: NodeJS.Timeout;
  private readonly intervalMs: number;
  private readonly now: () => Date;
  private failures = 0;

  constructor(private readonly options: RevocationReporterOptions) {
    this.intervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.now = options.now ?? (() => new Date());
    this.connection = options.connect();
    this.connection.on("error", () => {
      // Counted and logged by the failing command.
    });
    this.timer = setInterval(() => void this.heartbeat(), this.intervalMs);
    this.timer.unref();
    void this.heartbeat();
  }

  /** Publishes what enforcing one revocation closed. */
  acknowledge(ack: Omit<RevocationAck, "node_id" | "role" | "at">): void {
    const message: RevocationAck = { node_id: this.options.nodeId, role: this.options.role, at: this.now().toISOString(), ...ack };
    this.connection.publish(REVOCATION_ACK_CHANNEL, JSON.stringify(message)).catch((err: unknown) => this.failed("revocation acknowledgement", err));
  }

  /** Stores the current sequence under `ewii:revocation-seq:<node id>`. */
  async heartbeat(): Promise<void> {
    try {
      const state = this.options.state();
      const value: RevocationHeartbeat = { node_id: this.options.nodeId, role: this.options.role, sequence: state.sequence, stale: state.stale, updated_at: this.now().toISOString() };
      await this.connection.set(REVOCATION_SEQUENCE_KEY_PREFIX + this.options.nodeId, JSON.stringify(value), "PX", this.intervalMs * 3);
    } catch (err: unknown) {
      this.failed("revocation sequence heartbeat", err);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await quietly(this.connection);
  }

  private failed(what: string, err: unknown): void {
    this.failures++;
    this.options.logger.debug(`${what} failed`, { [LogField.cause]: asError(err).message, failures_total: this.failures });
  }
}

/**
 * Listens on the acknowledgement channel while `action` runs and for
 * `waitMs` after it, and returns the acknowledgements for the sequence
 * `action` returns. Subscribing first means no acknowledgement is missed.
 */
export async function collectRevocationAcks<T>(connect: RedisConnector, waitMs: number, action: () => Promise<T>, sequenceOf: (result: T) => number): Promise<{ result: T; acks: RevocationAck[] }> {
  const connection = connect();
  const received: RevocationAck[] = [];
  try {
    connection.on("message", (_channel: string, message: string) => {
      const ack = parseJson<RevocationAck>(message);
      if (ack !== undefined) received.push(ack);
    });
    await connection.subscribe(REVOCATION_ACK_CHANNEL);
    const result = await action();
    await new Promise((resolve) => setTimeout(resolve, waitMs));
    const sequence = sequenceOf(result);
    return { result, acks: received.filter((ack) => ack.sequence === sequence) };
  } finally {
    await quietly(connection);
  }
}

/** Reads every relay's and hub's last reported revocation sequence, sorted by node id. */
export async function readRevocationSequences(connect: RedisConnector): Promise<RevocationHeartbeat[]> {
  const connection = connect();
  try {
    if (connection instanceof Cluster && connection.status !== "ready") await new Promise((resolve) => connection.once("ready", resolve));
    const nodes: Redis[] = connection instanceof Cluster ? connection.nodes("master") : [connection];
    const beats: RevocationHeartbeat[] = [];
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, keys] = await node.scan(cursor, "MATCH", `${REVOCATION_SEQUENCE_KEY_PREFIX}*`, "COUNT", 100);
        cursor = next;
        for (const key of keys) {
          const beat = parseJson<RevocationHeartbeat>((await node.get(key)) ?? "");
          if (beat !== undefined) beats.push(beat);
        }
      } while (cursor !== "0");
    }
    return beats.sort((a, b) => a.node_id.localeCompare(b.node_id));
  } finally {
    await quietly(connection);
  }
}

function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    // Another writer's malformed value: skip it.
    return undefined;
  }
}
