import { CAServiceService } from "../../gen/ewii/ca/v1/ca.js";
import { EwiiError } from "../core/errors.js";
import { startGrpcServer, TlsMaterialSource, type RunningServer, type TlsMaterial } from "../core/grpc/index.js";
import { componentLogger, LogField, type Logger } from "../core/log.js";
import { createPeerVerifier } from "./auth.js";
import { bundleOf, servedTrustDomains } from "./bundles.js";
import type { CaConfig } from "./config.js";
import type { CaContext } from "./context.js";
import { issueOperatorCredential } from "./credentials.js";
import { openCaContext, requireCaStore } from "./init.js";
import { loadKek, resolveKekFile, type Kek } from "./kek.js";
import { RedisRevocationBus, redisConnectionFromConfig, describeRedisTarget, type RevocationBus } from "../core/revocation/index.js";
import { busRevocationPublisher, type RevocationPublisher } from "./revocation-publisher.js";
import { caServiceImplementation } from "./service.js";
import type { CaStore } from "./store.js";
import { operatorRootFingerprint } from "./tokens.js";

/** Health and reflection name of the service. */
export const CA_SERVICE_NAME = "ewii.ca.v1.CAService";
/** Name of the CA's own operator identity: `spiffe://<td>/service/ca`. */
export const CA_IDENTITY_NAME = "ca";

export interface CaServiceDeps {
  logger: Logger;
  now?: () => Date;
  /** The KEK; when omitted it is loaded from `kek_file` or EWII_KEK. */
  kek?: Kek;
  env?: NodeJS.ProcessEnv;
  /** Sends committed revocations; takes precedence over `revocationBus` and the `redis` config key. */
  publisher?: RevocationPublisher;
  /** Bus to publish revocations on, shared in-process by `ewii dev`; takes precedence over `redis`. */
  revocationBus?: RevocationBus;
}

export interface RunningCaService {
  port: number;
  address: string;
  server: RunningServer;
  store: CaStore;
  context: CaContext;
  /** SHA-256 of the operator root CA certificate, lowercase hex. */
  rootFingerprint: string;
  /** The operator trust bundle as PEM, for clients of the CA. */
  operatorBundlePem(): string;
  /** Stops the server, closes the store and zeroes the KEK. */
  close(): Promise<void>;
}

/**
 * Builds the CA server's TLS material: its own SVID, issued from the store,
 * and as trusted CAs the operator root plus every enabled tenant's bundle.
 * The chain sent ends with the operator root, so that an enrolling client
 * can compare the root with the fingerprint in its join token.
 */
function serverTlsMaterial(ctx: CaContext): { material: TlsMaterial; notAfter: Date } {
  const credential = issueOperatorCredential(ctx, { kind: "service", name: CA_IDENTITY_NAME, issuedBy: "renew" });
  return {
    material: { certChainPem: credential.certChainPem + credential.bundlePem, privateKeyPem: credential.privateKeyPem, trustedCasPem: trustedCasPem(ctx) },
    notAfter: credential.notAfter,
  };
}

function trustedCasPem(ctx: CaContext): string {
  return servedTrustDomains(ctx, { enabledOnly: true })
    .map((trustDomain) => bundleOf(ctx, trustDomain).toPem())
    .join("");
}

/**
 * Opens the CA store in `data_dir` (initialized by initOperator), checks the
 * KEK and serves CAService over TLS. Enroll takes callers without a client
 * certificate; every other method requires one.
 */
export async function startCaService(config: CaConfig, deps: CaServiceDeps): Promise<RunningCaService> {
  const logger = componentLogger(deps.logger, "ca");
  // Checked before the KEK, whose error would send the operator the wrong way on an empty data_dir.
  requireCaStore(config.data_dir);
  const kek = deps.kek ?? loadKek({ kekFile: resolveKekFile(config.kek_file, config.data_dir, deps.env ?? process.env), env: deps.env });
  // A bus created from the config belongs to this service and closes with it.
  let ownedBus: RevocationBus | undefined;
  if (deps.publisher === undefined && deps.revocationBus === undefined && config.redis !== undefined) {
    ownedBus = new RedisRevocationBus({ connect: redisConnectionFromConfig(config.redis), logger });
    logger.info("publishing revocations on Redis", { redis: describeRedisTarget(config.redis) });
  }
  const busForPublishing = deps.revocationBus ?? ownedBus;
  const publisher = deps.publisher ?? (busForPublishing === undefined ? undefined : busRevocationPublisher(busForPublishing));
  let ctx: CaContext;
  try {
    ctx = openCaContext({
      dataDir: config.data_dir,
      kek,
      now: deps.now,
      logger,
      svidTtlMs: config.svid_ttl_seconds * 1000,
      publisher,
    });
  } catch (err) {
    kek.destroy();
    await ownedBus?.close();
    throw err;
  }
  if (config.operator_trust_domain !== undefined && config.operator_trust_domain !== ctx.operatorTrustDomain) {
    ctx.store.close();
    kek.destroy();
    await ownedBus?.close();
    throw new EwiiError(
      "ERR_CONFIG_INVALID",
      `operator_trust_domain is "${config.operator_trust_domain}" but the CA store in ${config.data_dir} was initialized for "${ctx.operatorTrustDomain}"; fix the config or use another data_dir`,
    );
  }

  const initial = serverTlsMaterial(ctx);
  const tls = new TlsMaterialSource(initial.material);
  let renewTimer: NodeJS.Timeout | undefined;
  // Renews the server SVID at half its remaining lifetime, as clients do.
  const scheduleRenewal = (notAfter: Date): void => {
    const delayMs = Math.max(1000, Math.floor((notAfter.getTime() - ctx.now().getTime()) / 2));
    renewTimer = setTimeout(() => {
      try {
        const next = serverTlsMaterial(ctx);
        tls.update(next.material);
        logger.info("CA server SVID renewed", { not_after: next.notAfter.toISOString() });
        scheduleRenewal(next.notAfter);
      } catch (err: unknown) {
        logger.error("CA server SVID renewal failed; retrying in a minute", { [LogField.cause]: err instanceof Error ? err.message : String(err) });
        scheduleRenewal(new Date(ctx.now().getTime() + 2 * 60 * 1000));
      }
    }, delayMs);
    renewTimer.unref();
  };
  scheduleRenewal(initial.notAfter);

  ctx.onTrustChange = () => {
    try {
      tls.update({ ...tls.current(), trustedCasPem: trustedCasPem(ctx) });
    } catch (err: unknown) {
      logger.error("TLS trust store refresh failed; new tenant CAs are not trusted until the next change", {
        [LogField.cause]: err instanceof Error ? err.message : String(err),
      });
    }
  };

  let server: RunningServer;
  try {
    server = await startGrpcServer({
      name: "ca",
      listen: config.listen,
      logger,
      tls,
      requireClientCert: false,
      verifyPeer: createPeerVerifier(ctx),
      services: [{ definition: CAServiceService, implementation: caServiceImplementation(ctx, { tokenTtlMs: config.token_ttl_seconds * 1000 }), healthName: CA_SERVICE_NAME }],
    });
  } catch (err) {
    clearTimeout(renewTimer);
    ctx.store.close();
    kek.destroy();
    await ownedBus?.close();
    throw err;
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearTimeout(renewTimer);
      await server.close();
      ctx.store.close();
      ctx.signers.clear();
      kek.destroy();
      await ownedBus?.close();
    })();
    return closing;
  };

  return {
    port: server.port,
    address: server.address,
    server,
    store: ctx.store,
    context: ctx,
    rootFingerprint: operatorRootFingerprint(ctx),
    operatorBundlePem: () => bundleOf(ctx, ctx.operatorTrustDomain).toPem(),
    close,
  };
}
