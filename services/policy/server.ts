import { join } from "node:path";
import { startOwnSvidRenewal } from "../core/workload/own-renewal.js";
import { z } from "zod";
import { PolicyServiceService } from "../../gen/ewii/policy/v1/policy.js";
import { hostPort, loadConfig } from "../core/config.js";
import { startGrpcServer, watchTlsFiles, type FileTlsMaterialSource, type PeerVerifier, type RunningServer, type TlsMaterialSource } from "../core/grpc/index.js";
import { componentLogger, type Logger } from "../core/log.js";
import { RateLimiter } from "./rate-limit.js";
import { TRUST_DOMAIN } from "./schema.js";
import { PolicyService } from "./service.js";
import { PolicyStore } from "./store.js";

export const policyConfigSchema = z.strictObject({
  /** Address to listen on. */
  listen: hostPort.default("127.0.0.1:7402"),
  /** Directory of the policy store (policy.db). */
  data_dir: z.string().min(1),
  operator_trust_domain: z.string().regex(TRUST_DOMAIN, 'use a trust domain name such as "operator.example"').default("operator.example"),
  /** Directory with the service's svid.pem (chain, leaf first), key.pem and bundle.pem (trusted CAs); read again when they change. */
  credentials_dir: z.string().min(1),
  /** CA service address; when set, the service renews its own SVID at half-life into `credentials_dir`. */
  ca_address: hostPort.optional(),
  log_level: z.enum(["error", "warn", "info", "debug"]).default("info"),
});

export type PolicyConfig = z.infer<typeof policyConfigSchema>;

export const POLICY_ENV_KEYS = {
  listen: "EWII_POLICY_LISTEN",
  data_dir: "EWII_POLICY_DATA_DIR",
  credentials_dir: "EWII_POLICY_CREDENTIALS_DIR",
  ca_address: "EWII_CA_ADDRESS",
  operator_trust_domain: "EWII_OPERATOR_TRUST_DOMAIN",
  log_level: "EWII_LOG_LEVEL",
};

/** Loads the policy service configuration from an optional YAML file, the environment and overrides. */
export function loadPolicyConfig(file: string | undefined, overrides: Record<string, unknown> = {}): PolicyConfig {
  return loadConfig(policyConfigSchema, { file, envKeys: POLICY_ENV_KEYS, overrides });
}

export interface PolicyServiceRuntimeDeps {
  logger: Logger;
  /** Checks a caller's leaf certificate against the trust bundles; see PeerVerifier. */
  verifyPeer: PeerVerifier;
  /** TLS material; when omitted it is read from `credentials_dir` and reloaded on change. */
  tls?: TlsMaterialSource;
  now?: () => Date;
}

export interface RunningPolicyService {
  service: PolicyService;
  server: RunningServer;
  store: PolicyStore;
  close(): Promise<void>;
}

/** File name of the policy store inside `data_dir`. */
export const POLICY_DB_FILE = "policy.db";

/** Opens the store and starts the PolicyService gRPC server with mTLS (client certificates required). */
export async function startPolicyService(config: PolicyConfig, deps: PolicyServiceRuntimeDeps): Promise<RunningPolicyService> {
  const logger = componentLogger(deps.logger, "policy");
  const store = PolicyStore.open(join(config.data_dir, POLICY_DB_FILE), { now: deps.now });
  let ownTls: FileTlsMaterialSource | undefined;
  try {
    const service = new PolicyService({ store, operatorTrustDomain: config.operator_trust_domain, logger, now: deps.now, rateLimiter: new RateLimiter() });
    let tls: TlsMaterialSource;
    if (deps.tls !== undefined) {
      tls = deps.tls;
    } else {
      ownTls = await watchTlsFiles(
        { certFile: join(config.credentials_dir, "svid.pem"), keyFile: join(config.credentials_dir, "key.pem"), caFile: join(config.credentials_dir, "bundle.pem") },
        logger,
      );
      tls = ownTls;
    }
    const server = await startGrpcServer({
      name: "policy",
      listen: config.listen,
      logger,
      tls,
      requireClientCert: true,
      verifyPeer: deps.verifyPeer,
      services: [{ definition: PolicyServiceService, implementation: (rpc) => service.implementation(rpc), healthName: "ewii.policy.v1.PolicyService" }],
    });
    const renewer = startOwnSvidRenewal(config, logger);
    logger.info("policy service started", { address: server.address, version: service.current()?.record.version ?? 0 });
    return {
      service,
      server,
      store,
      close: async () => {
        renewer?.stop();
        await server.close();
        ownTls?.close();
        store.close();
      },
    };
  } catch (err: unknown) {
    ownTls?.close();
    store.close();
    throw err;
  }
}
