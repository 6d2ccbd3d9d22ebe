import { z } from "zod";
import { hostPort, loadConfig } from "../core/config.js";
import { redisConnectionSchema } from "../core/revocation/redis-connection.js";

export const caConfigSchema = z.strictObject({
  /** Address to listen on. */
  listen: hostPort.default("127.0.0.1:7401"),
  /** Directory of the CA store (ca.db) and of the credentials written at initialization. */
  data_dir: z.string().min(1),
  /** File holding the 32-byte key-encryption key (raw, hex or base64), mode 0600. When unset, EWII_KEK is used, else `<data_dir>/kek` as written by `ewii init`. */
  kek_file: z.string().min(1).optional(),
  /** Lifetime of issued SVIDs in seconds; at least 60. */
  svid_ttl_seconds: z.number().int().min(60).default(86_400),
  /** Lifetime of join tokens created without a ttl_seconds, in seconds; 1 to 86400. */
  token_ttl_seconds: z.number().int().min(1).max(86_400).default(900),
  /** Operator trust domain; when set, it must equal the one the store was initialized with. */
  operator_trust_domain: z.string().min(1).optional(),
  /** Redis to publish revocations on (see docs/redis.md); unset, relays and hubs learn of revocations by polling. */
  redis: redisConnectionSchema.optional(),
  log_level: z.enum(["error", "warn", "info", "debug"]).default("info"),
});

export type CaConfig = z.infer<typeof caConfigSchema>;

export const CA_ENV_KEYS = {
  listen: "EWII_CA_LISTEN",
  data_dir: "EWII_CA_DATA_DIR",
  kek_file: "EWII_KEK_FILE",
  svid_ttl_seconds: "EWII_CA_SVID_TTL_SECONDS",
  token_ttl_seconds: "EWII_CA_TOKEN_TTL_SECONDS",
  operator_trust_domain: "EWII_OPERATOR_TRUST_DOMAIN",
  log_level: "EWII_LOG_LEVEL",
};

/** Loads the CA service configuration from an optional YAML file, the environment and overrides. */
export function loadCaConfig(file: string | undefined, overrides: Record<string, unknown> = {}, env?: NodeJS.ProcessEnv): CaConfig {
  return loadConfig(caConfigSchema, { file, envKeys: CA_ENV_KEYS, overrides, env });
}
