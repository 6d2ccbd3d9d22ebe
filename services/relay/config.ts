import { randomBytes } from "node:crypto";
import { z } from "zod";
import { hostPort, loadConfig } from "../core/config.js";

export const relayConfigSchema = z.strictObject({
  /** Address to listen on for clients and hubs. */
  listen: hostPort.default("127.0.0.1:7404"),
  /** Address hubs dial, recorded in the route registry; defaults to the bound address. */
  advertise_address: hostPort.optional(),
  /** Relay instance id, unique among relays; random when unset. */
  relay_id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "use 1 to 64 letters, digits, dots, underscores or hyphens").optional(),
  operator_trust_domain: z.string().min(1).default("operator.example"),
  /** Directory with the relay's svid.pem, key.pem and bundle.pem. */
  credentials_dir: z.string().min(1),
  /** CA service address, for bundles and revocations. */
  ca_address: hostPort,
  /** Redis URL for routes (redis://host:port/db); unset keeps routes in this process. */
  redis_url: z.string().url().optional(),
  route_lease_ms: z.number().int().min(1000).default(15_000),
  bundle_refresh_ms: z.number().int().min(100).default(5_000),
  revocation_poll_ms: z.number().int().min(100).default(2_000),
  /** Past this age of unconfirmed revocation state, new streams are refused. */
  staleness_bound_ms: z.number().int().min(1000).default(30_000),
  heartbeat_interval_ms: z.number().int().min(100).default(5_000),
  dead_peer_timeout_ms: z.number().int().min(500).default(15_000),
  log_level: z.enum(["error", "warn", "info", "debug"]).default("info"),
});

export type RelayConfig = z.infer<typeof relayConfigSchema> & { relay_id: string };

export const RELAY_ENV_KEYS = {
  listen: "EWII_RELAY_LISTEN",
  relay_id: "EWII_RELAY_ID",
  credentials_dir: "EWII_RELAY_CREDENTIALS_DIR",
  ca_address: "EWII_CA_ADDRESS",
  redis_url: "EWII_REDIS_URL",
  operator_trust_domain: "EWII_OPERATOR_TRUST_DOMAIN",
  log_level: "EWII_LOG_LEVEL",
};

export function loadRelayConfig(file: string | undefined, overrides: Record<string, unknown> = {}): RelayConfig {
  const config = loadConfig(relayConfigSchema, { file, envKeys: RELAY_ENV_KEYS, overrides });
  return { ...config, relay_id: config.relay_id ?? `relay-${randomBytes(4).toString("hex")}` };
}
