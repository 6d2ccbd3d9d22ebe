import { readFileSync } from "node:fs";
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { z } from "zod";

/** Maximum wait between reconnection attempts, in milliseconds. */
export const REDIS_RECONNECT_MAX_DELAY_MS = 1_000;
/**
 * Added to the wait for each further reconnection attempt, in milliseconds,
 * up to REDIS_RECONNECT_MAX_DELAY_MS. A restarted Redis is often back
 * within tens of milliseconds and revocations wait for the reconnection,
 * so the first attempts come quickly. The wait grows linearly, not by
 * doubling, because a doubled wait can overshoot the moment Redis returns
 * by as much as the whole outage so far.
 */
export const REDIS_RECONNECT_STEP_MS = 10;

const hostAndPort = z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65_535) });

/**
 * How to reach Redis: exactly one of `url` (one server), `sentinels` with
 * `sentinel_name` (Redis Sentinel) or `cluster_nodes` (Redis Cluster).
 */
export const redisConnectionSchema = z
  .strictObject({
    /** One server: redis://[user:password@]host:port/db, or rediss:// for TLS. */
    url: z.string().url().optional(),
    /** Sentinel addresses; ioredis queries them for the current primary of `sentinel_name`. */
    sentinels: z.array(hostAndPort).min(1).optional(),
    /** Name of the primary group the sentinels watch (`sentinel monitor <name> ...`). */
    sentinel_name: z.string().min(1).optional(),
    /** Seed nodes of a Redis Cluster; ioredis discovers the others. */
    cluster_nodes: z.array(hostAndPort).min(1).optional(),
    /** Password of the Redis servers (AUTH); with `url`, the password in the URL also works. */
    password: z.string().min(1).optional(),
    /** Use TLS to the Redis servers (and to the sentinels). */
    tls: z.boolean().default(false),
    /** PEM file of the CAs that sign the Redis server certificates; the system CAs when unset. */
    tls_ca_file: z.string().min(1).optional(),
  })
  .superRefine((value, ctx) => {
    const modes = [value.url !== undefined, value.sentinels !== undefined, value.cluster_nodes !== undefined].filter(Boolean).length;
    if (modes !== 1) ctx.addIssue({ code: "custom", message: `set exactly one of url, sentinels or cluster_nodes, got ${modes}` });
    if (value.sentinels !== undefined && value.sentinel_name === undefined) ctx.addIssue({ code: "custom", path: ["sentinel_name"], message: "sentinel_name is required with sentinels" });
  });

export type RedisConnectionConfig = z.input<typeof redisConnectionSchema>;

/** A Redis server or cluster connection, as ioredis returns it. */
export type RedisConnection = Redis | Cluster;

/** Opens a new connection each time it is called; pub/sub needs its own connections. */
export type RedisConnector = () => RedisConnection;

/** Returns the wait before reconnection attempt `attempt` (1, 2, ...): 10, 20, 30 ... ms, capped at 1 s. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(Math.max(1, attempt) * REDIS_RECONNECT_STEP_MS, REDIS_RECONNECT_MAX_DELAY_MS);
}

/**
 * Returns a connector for the configured Redis: one server (`url`), a
 * Sentinel-managed primary (`sentinels` + `sentinel_name`) or a Cluster
 * (`cluster_nodes`). `overrides` set per-connection ioredis options, such
 * as `enableOfflineQueue: false` for a publisher that must not queue.
 */
export function redisConnectionFromConfig(input: RedisConnectionConfig, overrides: RedisOptions = {}): RedisConnector {
  const config = redisConnectionSchema.parse(input);
  const tls = config.tls ? { ca: config.tls_ca_file === undefined ? undefined : readFileSync(config.tls_ca_file, "utf8") } : undefined;
  const common: RedisOptions = {
    password: config.password,
    tls,
    retryStrategy: reconnectDelayMs,
    ...overrides,
  };

  if (config.cluster_nodes !== undefined) {
    const nodes = config.cluster_nodes;
    const clusterOptions: ClusterOptions = {
      redisOptions: common,
      clusterRetryStrategy: reconnectDelayMs,
      enableOfflineQueue: overrides.enableOfflineQueue,
    };
    return () => new Cluster(nodes, clusterOptions);
  }
  if (config.sentinels !== undefined) {
    const sentinelOptions: RedisOptions = {
      ...common,
      sentinels: config.sentinels,
      name: config.sentinel_name,
      sentinelPassword: config.password,
      enableTLSForSentinelMode: config.tls,
      sentinelRetryStrategy: reconnectDelayMs,
    };
    return () => new Redis(sentinelOptions);
  }
  const url = config.url as string;
  return () => new Redis(url, common);
}

/** Describes the target without credentials, for logs. */
export function describeRedisTarget(input: RedisConnectionConfig): string {
  if (input.cluster_nodes !== undefined) return `cluster ${input.cluster_nodes.map((n) => `${n.host}:${n.port}`).join(",")}`;
  if (input.sentinels !== undefined) return `sentinel ${input.sentinel_name ?? ""} via ${input.sentinels.map((n) => `${n.host}:${n.port}`).join(",")}`;
  if (input.url === undefined) return "(none)";
  try {
    const url = new URL(input.url);
    return `${url.protocol}//${url.host}`;
  } catch {
    // An invalid URL is rejected by redisConnectionFromConfig; here it only names the target.
    return "(invalid url)";
  }
}
