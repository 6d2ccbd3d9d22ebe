import { join } from "node:path";
import { startOwnSvidRenewal } from "../core/workload/own-renewal.js";
import type { KeyObject } from "node:crypto";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import { AuditServiceService } from "../../gen/ewii/audit/v1/audit.js";
import { startGrpcServer, watchTlsFiles } from "../core/grpc/index.js";
import type { FileTlsMaterialSource, PeerVerifier, RunningServer, TlsMaterialSource } from "../core/grpc/index.js";
import { componentLogger } from "../core/log.js";
import type { Logger } from "../core/log.js";
import type { AuditConfig } from "./config.js";
import { effectiveAppenders } from "./config.js";
import { verifyAuditClientSignature } from "./client-signature.js";
import { AuditLog } from "./log.js";
import { loadParamsKey } from "./params.js";
import { AuditService } from "./service.js";
import { SinkSet } from "./export/sinks.js";

export const AUDIT_HEALTH_NAME = "ewii.audit.v1.AuditService";

export interface AuditServiceDeps {
  logger: Logger;
  /** Checks a caller's leaf certificate against the trust bundles; see PeerVerifier. */
  verifyPeer: PeerVerifier;
  /** TLS material; when omitted it is read from `credentials_dir` and reloaded on change. */
  tls?: TlsMaterialSource;
  now?: () => Date;
  /** Ed25519 checkpoint key; by default the one kept in `data_dir`. */
  signingKey?: KeyObject;
  /** Checks client result signatures during Verify; default `verifyAuditClientSignature`. */
  verifyClientSignature?: (record: AuditRecord) => boolean;
  /** Environment to read EWII_AUDIT_HMAC_KEY from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface RunningAuditService {
  log: AuditLog;
  sinks: SinkSet;
  service: AuditService;
  server: RunningServer;
  close(): Promise<void>;
}

/** Opens the audit log and starts the AuditService gRPC server with mTLS (client certificates required). */
export async function startAuditService(config: AuditConfig, deps: AuditServiceDeps): Promise<RunningAuditService> {
  const logger = componentLogger(deps.logger, "audit");
  const paramsKey = await loadParamsKey({ keyFile: config.hmac_key_file, dataDir: config.data_dir, env: deps.env });
  const log = await AuditLog.open(config.data_dir, {
    paramsKey,
    rawParamsDatasets: config.raw_params_datasets,
    checkpointEveryRecords: config.checkpoint_every_records,
    checkpointEverySeconds: config.checkpoint_every_seconds,
    segmentMaxBytes: config.segment_max_bytes,
    logger,
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.signingKey === undefined ? {} : { signingKey: deps.signingKey }),
  });
  let ownTls: FileTlsMaterialSource | undefined;
  let sinks: SinkSet | undefined;
  try {
    sinks = await SinkSet.start({ log, sinks: config.sinks, logger: componentLogger(logger, "audit-export"), ...(deps.now === undefined ? {} : { now: deps.now }) });
    const sinkSet = sinks;
    let server: RunningServer | undefined;
    const service = new AuditService({
      log,
      operatorTrustDomain: config.operator_trust_domain,
      appenders: effectiveAppenders(config),
      logger,
      verifyClientSignature: deps.verifyClientSignature ?? verifyAuditClientSignature,
      sinkStatus: () => sinkSet.status(),
      onUnavailable: () => server?.setServing(false),
    });
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
    server = await startGrpcServer({
      name: "audit",
      listen: config.listen,
      logger,
      tls,
      requireClientCert: true,
      verifyPeer: deps.verifyPeer,
      services: [{ definition: AuditServiceService, implementation: (rpc) => service.implementation(rpc), healthName: AUDIT_HEALTH_NAME }],
    });
    const running = server;
    const renewer = startOwnSvidRenewal(config, logger);
    logger.info("audit service started", { address: running.address, log_id: log.logId, sequence: log.head.sequence.toString(10) });
    return {
      log,
      sinks: sinkSet,
      service,
      server: running,
      close: async () => {
        renewer?.stop();
        service.stopAppendStreams();
        await running.close();
        ownTls?.close();
        // The log closes first so that the sinks also export its final checkpoint.
        await log.close();
        await sinkSet.stop();
      },
    };
  } catch (err: unknown) {
    ownTls?.close();
    await sinks?.stop();
    await log.close();
    throw err;
  }
}
