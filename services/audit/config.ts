import { z } from "zod";
import { hostPort, loadConfig } from "../core/config.js";
import { validateTrustDomain } from "../core/identity/index.js";
import { sinksConfigSchema } from "./export/sink-config.js";
import { DEFAULT_CHECKPOINT_EVERY_RECORDS, DEFAULT_CHECKPOINT_EVERY_SECONDS, DEFAULT_SEGMENT_MAX_BYTES } from "./log.js";

/** Smallest segment size accepted, in bytes, so a log does not split into thousands of files. */
const MIN_SEGMENT_MAX_BYTES = 1024 * 1024;

const trustDomain = z.string().refine(
  (value) => {
    try {
      validateTrustDomain(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'use a trust domain name such as "operator.example": lowercase letters, digits, ".", "-" and "_"' },
);

/**
 * A SPIFFE ID allowed to append, or a prefix ending in "/" that allows
 * every ID under it (for example "spiffe://operator.example/hub/").
 */
const appender = z.string().regex(/^spiffe:\/\/[^/]+\/.+$/, 'use a SPIFFE ID such as "spiffe://operator.example/service/hub" or a prefix ending in "/"');

export const auditConfigSchema = z.strictObject({
  /** Address to listen on. */
  listen: hostPort.default("127.0.0.1:7403"),
  /** Directory of the audit log segments, keys and log id. */
  data_dir: z.string().min(1),
  operator_trust_domain: trustDomain.default("operator.example"),
  /** Directory with the service's svid.pem (chain, leaf first), key.pem and bundle.pem (trusted CAs); read again when they change. */
  credentials_dir: z.string().min(1),
  /** CA service address; when set, the service renews its own SVID at half-life into `credentials_dir`. */
  ca_address: hostPort.optional(),
  /**
   * File holding the params HMAC key, hexadecimal or base64, at least 32
   * bytes. EWII_AUDIT_HMAC_KEY overrides it; without either, a key is
   * generated in data_dir.
   */
  hmac_key_file: z.string().min(1).optional(),
  /** Datasets whose records keep the raw parameters next to their digest. */
  raw_params_datasets: z.array(z.string().min(1)).default([]),
  /** A signed checkpoint is appended after this many records. */
  checkpoint_every_records: z.number().int().positive().default(DEFAULT_CHECKPOINT_EVERY_RECORDS),
  /** A signed checkpoint is appended this often, in seconds, when records came in since the last one; 0 turns it off. */
  checkpoint_every_seconds: z.number().int().min(0).default(DEFAULT_CHECKPOINT_EVERY_SECONDS),
  /** A new segment file starts once the current one reaches this size, in bytes. */
  segment_max_bytes: z.number().int().min(MIN_SEGMENT_MAX_BYTES).default(DEFAULT_SEGMENT_MAX_BYTES),
  /** Callers allowed to Append; empty means ["spiffe://<operator_trust_domain>/service/hub"]. */
  appenders: z.array(appender).default([]),
  log_level: z.enum(["error", "warn", "info", "debug"]).default("info"),
  /** SIEM export sinks, each with its own exporter and cursor; see docs/siem.md. */
  sinks: sinksConfigSchema.default([]),
});

export type AuditConfig = z.infer<typeof auditConfigSchema>;

export const AUDIT_ENV_KEYS = {
  listen: "EWII_AUDIT_LISTEN",
  data_dir: "EWII_AUDIT_DATA_DIR",
  credentials_dir: "EWII_AUDIT_CREDENTIALS_DIR",
  ca_address: "EWII_CA_ADDRESS",
  hmac_key_file: "EWII_AUDIT_HMAC_KEY_FILE",
  operator_trust_domain: "EWII_OPERATOR_TRUST_DOMAIN",
  log_level: "EWII_LOG_LEVEL",
};

/** Loads the audit service configuration from an optional YAML file, the environment and overrides. */
export function loadAuditConfig(file: string | undefined, overrides: Record<string, unknown> = {}): AuditConfig {
  return loadConfig(auditConfigSchema, { file, envKeys: AUDIT_ENV_KEYS, overrides });
}

/** Returns the configured appenders, or the default hub identity of the operator trust domain. */
export function effectiveAppenders(config: AuditConfig): string[] {
  return config.appenders.length > 0 ? config.appenders : [`spiffe://${config.operator_trust_domain}/service/hub`];
}
