import { z } from "zod";
import { hostPort, loadConfig } from "../core/config.js";

export const hubConfigSchema = z.strictObject({
  /** Address internal services call ExecuteQuery on. */
  listen: hostPort.default("127.0.0.1:7405"),
  operator_trust_domain: z.string().min(1).default("operator.example"),
  /** Directory with the hub's svid.pem, key.pem and bundle.pem. */
  credentials_dir: z.string().min(1),
  ca_address: hostPort,
  policy_address: hostPort,
  audit_address: hostPort,
  /** Redis URL for routes; unset uses `relays` only (or the registry shared in-process by `ewii dev`). */
  redis_url: z.string().url().optional(),
  /** Relay addresses tried when no route names a relay for the client. */
  relays: z.array(hostPort).default([]),
  bundle_refresh_ms: z.number().int().min(100).default(5_000),
  revocation_poll_ms: z.number().int().min(100).default(2_000),
  /** Past this age of unconfirmed revocation state, queries are refused. */
  staleness_bound_ms: z.number().int().min(1000).default(30_000),
  /** Past this age of the policy snapshot, queries are refused. */
  max_policy_age_ms: z.number().int().min(1000).default(60_000),
  /** Time allowed to route to a client and finish the handshake. */
  connect_timeout_ms: z.number().int().min(100).default(10_000),
  /** Deadline of each audit append, in milliseconds. */
  audit_deadline_ms: z.number().int().min(100).default(5_000),
  log_level: z.enum(["error", "warn", "info", "debug"]).default("info"),
});

export type HubConfig = z.infer<typeof hubConfigSchema>;

export const HUB_ENV_KEYS = {
  listen: "EWII_HUB_LISTEN",
  credentials_dir: "EWII_HUB_CREDENTIALS_DIR",
  ca_address: "EWII_CA_ADDRESS",
  policy_address: "EWII_POLICY_ADDRESS",
  audit_address: "EWII_AUDIT_ADDRESS",
  redis_url: "EWII_REDIS_URL",
  operator_trust_domain: "EWII_OPERATOR_TRUST_DOMAIN",
  log_level: "EWII_LOG_LEVEL",
};

export function loadHubConfig(file: string | undefined, overrides: Record<string, unknown> = {}): HubConfig {
  return loadConfig(hubConfigSchema, { file, envKeys: HUB_ENV_KEYS, overrides });
}
