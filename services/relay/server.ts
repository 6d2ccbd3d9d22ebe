import { Redis } from "ioredis";
import { RelayServiceService } from "../../gen/ewii/relay/v1/relay.js";
import { asError } from "../core/errors.js";
import { startGrpcServer, TlsMaterialSource } from "../core/grpc/index.js";
import type { RunningServer } from "../core/grpc/index.js";
import { BundleSet } from "../core/identity/index.js";
import { componentLogger, LogField, type Logger } from "../core/log.js";
import { DenySet, RedisRevocationBus, redisConnectionFromConfig, RevocationFollower, RevocationReporter, type RevocationBus } from "../core/revocation/index.js";
import { InMemoryRouteRegistry, RedisRouteRegistry, type RouteRegistry } from "../core/routes/index.js";
import { BundleRefresher, caRevocationSource, dialCa } from "../core/workload/ca-link.js";
import { loadCredentials } from "../core/workload/credentials.js";
import { createPeerVerifier } from "../core/workload/peer-verifier.js";
import { SvidRenewer } from "../core/workload/renewal.js";
import type { RelayConfig } from "./config.js";
import { RelayCore } from "./relay-core.js";
import { createRelayService } from "./service.js";

export const RELAY_HEALTH_NAME = "ewii.relay.v1.RelayService";

export interface RunningRelay {
  relayId: string;
  address: string;
  port: number;
  core: RelayCore;
  denySet: DenySet;
  follower: RevocationFollower;
  server: RunningServer;
  /** Highest revocation sequence applied to the deny set. */
  revocationSequence(): number;
  /** Live client streams and hub sessions closed because of a revocation, since start. */
  revocationCounters(): { streamsClosed: number; sessionsClosed: number };
  close(): Promise<void>;
}

export interface RelayDeps {
  logger: Logger;
  routes?: RouteRegistry;
  /** In-process revocation bus (`ewii dev`); ignored when `redis_url` is set. */
  revocationBus?: RevocationBus;
}

/**
 * Starts a relay: loads its SVID, fetches every trust bundle and the
 * revocation log from the CA, then accepts client streams and hub sessions.
 */
export async function startRelay(config: RelayConfig, deps: RelayDeps): Promise<RunningRelay> {
  const logger = componentLogger(deps.logger, "relay").child({ [LogField.relayId]: config.relay_id });
  const credentials = loadCredentials(config.credentials_dir);
  const ca = dialCa(config.ca_address, credentials, config.operator_trust_domain);
  const bundles = new BundleSet();
  const tls = new TlsMaterialSource({ certChainPem: credentials.certChainPem, privateKeyPem: credentials.privateKeyPem, trustedCasPem: credentials.operatorBundlePem });
  const refresher = new BundleRefresher({ client: ca, bundles, tls, logger, intervalMs: config.bundle_refresh_ms });
  await refresher.start();

  let redis: Redis | undefined;
  let routes = deps.routes;
  if (routes === undefined && config.redis_url !== undefined) {
    redis = new Redis(config.redis_url, { lazyConnect: false, maxRetriesPerRequest: 2 });
    redis.on("error", (err: unknown) => logger.warn("redis connection error", { [LogField.cause]: asError(err).message }));
    routes = new RedisRouteRegistry(redis);
  }
  routes ??= new InMemoryRouteRegistry();

  const denySet = new DenySet();
  let core: RelayCore | undefined;
  let server: RunningServer | undefined;

  // With Redis, revocations are pushed on its channel and enforcement is reported back for `ewii revoke`.
  let ownedBus: RevocationBus | undefined;
  let reporter: RevocationReporter | undefined;
  const connectRedis = config.redis_url === undefined ? undefined : redisConnectionFromConfig({ url: config.redis_url });
  if (connectRedis !== undefined) ownedBus = new RedisRevocationBus({ connect: connectRedis, logger });
  const follower = new RevocationFollower({
    source: caRevocationSource(ca),
    denySet,
    logger,
    bus: ownedBus ?? deps.revocationBus,
    pollIntervalMs: config.revocation_poll_ms,
    stalenessBoundMs: config.staleness_bound_ms,
    onRevoked: (revocation) => {
      const closed = core?.enforceRevocation(revocation) ?? { streams: 0, sessions: 0 };
      reporter?.acknowledge({ sequence: Number(revocation.sequence), streams_closed: closed.streams, sessions_closed: closed.sessions, queries_aborted: 0 });
    },
    onStaleChange: (stale) => server?.setServing(!stale),
  });
  if (connectRedis !== undefined) {
    reporter = new RevocationReporter({ connect: connectRedis, nodeId: config.relay_id, role: "relay", logger, state: () => ({ sequence: denySet.sequence, stale: follower.isStale() }) });
  }
  await follower.start();

  core = new RelayCore({ relayId: config.relay_id, routes, denySet, logger, routeLeaseMs: config.route_lease_ms });
  const relayCore = core;
  server = await startGrpcServer({
    name: "relay",
    listen: config.listen,
    logger,
    tls,
    requireClientCert: true,
    verifyPeer: createPeerVerifier(bundles),
    services: [
      {
        definition: RelayServiceService,
        healthName: RELAY_HEALTH_NAME,
        implementation: (rpc) =>
          createRelayService(rpc, {
            core: relayCore,
            denySet,
            isRevocationStateStale: () => ({ stale: follower.isStale(), reason: follower.reason }),
            operatorTrustDomain: config.operator_trust_domain,
            heartbeatIntervalMs: config.heartbeat_interval_ms,
            deadPeerTimeoutMs: config.dead_peer_timeout_ms,
          }),
      },
    ],
  });
  const advertised = config.advertise_address ?? server.address;
  const announce = (): Promise<void> => routes.announceRelay(config.relay_id, advertised, config.route_lease_ms);
  await announce();
  const announceTimer = setInterval(() => {
    announce().catch((err: unknown) => logger.warn("relay announcement failed", { [LogField.cause]: asError(err).message }));
  }, Math.floor(config.route_lease_ms / 3));
  announceTimer.unref();

  const renewer = new SvidRenewer({
    credentialsDir: config.credentials_dir,
    caAddress: config.ca_address,
    operatorTrustDomain: config.operator_trust_domain,
    logger,
    onRenewed: (renewed) => tls.update({ ...tls.current(), certChainPem: renewed.certChainPem, privateKeyPem: renewed.privateKeyPem }),
  });
  renewer.start();

  const running = server;
  return {
    relayId: config.relay_id,
    address: running.address,
    port: running.port,
    core: relayCore,
    denySet,
    follower,
    server: running,
    revocationSequence: () => denySet.sequence,
    revocationCounters: () => ({ streamsClosed: relayCore.counters.streamsClosedByRevocation, sessionsClosed: relayCore.counters.sessionsClosedByRevocation }),
    async close() {
      clearInterval(announceTimer);
      renewer.stop();
      await follower.stop();
      await reporter?.close();
      await ownedBus?.close();
      refresher.stop();
      await relayCore.close();
      await running.close(1000);
      ca.close();
      if (redis !== undefined) await redis.quit().catch(() => undefined);
    },
  };
}
