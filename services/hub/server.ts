import { createPrivateKey, X509Certificate } from "node:crypto";
import { Redis } from "ioredis";
import { AuditServiceClient } from "../../gen/ewii/audit/v1/audit.js";
import { HubServiceService } from "../../gen/ewii/hub/v1/hub.js";
import { PolicyServiceClient } from "../../gen/ewii/policy/v1/policy.js";
import { asError } from "../core/errors.js";
import { startGrpcServer, TlsMaterialSource } from "../core/grpc/index.js";
import type { RunningServer } from "../core/grpc/index.js";
import { BundleSet, pemToDerList, verifyX509Svid } from "../core/identity/index.js";
import { componentLogger, LogField, type Logger } from "../core/log.js";
import { DenySet, RedisRevocationBus, redisConnectionFromConfig, RevocationFollower, RevocationReporter, type RevocationBus } from "../core/revocation/index.js";
import { InMemoryRouteRegistry, RedisRouteRegistry, type RouteRegistry } from "../core/routes/index.js";
import type { VerifiedPeer } from "../core/session/index.js";
import { BundleRefresher, caRevocationSource, dialCa } from "../core/workload/ca-link.js";
import { loadCredentials, type WorkloadCredentials } from "../core/workload/credentials.js";
import { operatorServiceChannel } from "../core/workload/operator-channel.js";
import { createPeerVerifier } from "../core/workload/peer-verifier.js";
import { SvidRenewer } from "../core/workload/renewal.js";
import { PolicySnapshotCache } from "../policy/watcher.js";
import { StreamingAuditAppender } from "./audit-appender.js";
import type { HubConfig } from "./config.js";
import { SessionConnector, type HubIdentity } from "./connector.js";
import { NotBeforeCache } from "./not-before-cache.js";
import { LocalPolicyGate } from "./policy-gate.js";
import { HubQueries } from "./service.js";

export const HUB_HEALTH_NAME = "ewii.hub.v1.HubService";

export interface RunningHub {
  address: string;
  port: number;
  denySet: DenySet;
  follower: RevocationFollower;
  connector: SessionConnector;
  policy: PolicySnapshotCache;
  server: RunningServer;
  /** Highest revocation sequence applied to the deny set. */
  revocationSequence(): number;
  /** End-to-end sessions closed and in-flight queries aborted because of a revocation, since start. */
  revocationCounters(): { sessionsClosed: number; queriesAborted: number };
  close(): Promise<void>;
}

export interface HubDeps {
  logger: Logger;
  routes?: RouteRegistry;
  /** In-process revocation bus (`ewii dev`); ignored when `redis_url` is set. */
  revocationBus?: RevocationBus;
}

function toHubIdentity(credentials: WorkloadCredentials): HubIdentity {
  return {
    certChainPem: credentials.certChainPem,
    privateKeyPem: credentials.privateKeyPem,
    certChainDer: pemToDerList(credentials.certChainPem),
    privateKey: createPrivateKey(credentials.privateKeyPem),
    operatorBundlePem: credentials.operatorBundlePem,
  };
}


/**
 * Starts the hub: trust bundles and revocations from the CA, policy
 * snapshots from the policy service, audit appends to the audit service,
 * and sessions to clients through the relays.
 */
export async function startHub(config: HubConfig, deps: HubDeps): Promise<RunningHub> {
  const logger = componentLogger(deps.logger, "hub");
  let credentials = loadCredentials(config.credentials_dir);
  let identity = toHubIdentity(credentials);
  const ca = dialCa(config.ca_address, credentials, config.operator_trust_domain);
  const bundles = new BundleSet();
  const tls = new TlsMaterialSource({ certChainPem: credentials.certChainPem, privateKeyPem: credentials.privateKeyPem, trustedCasPem: credentials.operatorBundlePem });
  const refresher = new BundleRefresher({ client: ca, bundles, tls, logger, intervalMs: config.bundle_refresh_ms });
  await refresher.start();

  let redis: Redis | undefined;
  let routes = deps.routes;
  if (routes === undefined && config.redis_url !== undefined) {
    redis = new Redis(config.redis_url, { maxRetriesPerRequest: 2 });
    redis.on("error", (err: unknown) => logger.warn("redis connection error", { [LogField.cause]: asError(err).message }));
    routes = new RedisRouteRegistry(redis);
  }
  routes ??= new InMemoryRouteRegistry();
  const routeRegistry = routes;

  const denySet = new DenySet();
  const verifyClient = (chainDer: Uint8Array[]): VerifiedPeer => {
    const verified = verifyX509Svid(chainDer, bundles);
    const sequence = denySet.match({ spiffeId: verified.spiffeId.toString(), trustDomain: verified.spiffeId.trustDomain, serial: verified.serial, notBefore: verified.notBefore });
    if (sequence !== undefined) throw new Error(`client ${verified.spiffeId.toString()} is revoked (revocation sequence ${sequence})`);
    return { spiffeId: verified.spiffeId.toString(), publicKey: verified.leaf.publicKey, serial: verified.serial };
  };
  const connector = new SessionConnector({
    operatorTrustDomain: config.operator_trust_domain,
    routes: routeRegistry,
    staticRelays: config.relays,
    identity: () => identity,
    verifyClient,
    logger,
    connectTimeoutMs: config.connect_timeout_ms,
  });

  const policyClient = new PolicyServiceClient(...operatorServiceChannel(config.policy_address, credentials, config.operator_trust_domain, "policy"));
  const policy = new PolicySnapshotCache(policyClient, logger);
  policy.start();
  const auditClient = new AuditServiceClient(...operatorServiceChannel(config.audit_address, credentials, config.operator_trust_domain, "audit"));
  const audit = new StreamingAuditAppender({ client: auditClient, deadlineMs: config.audit_deadline_ms, logger });

  let queries: HubQueries | undefined;
  let server: RunningServer | undefined;
  // With Redis, revocations are pushed on its channel and enforcement is reported back for `ewii revoke`.
  const connectRedis = config.redis_url === undefined ? undefined : redisConnectionFromConfig({ url: config.redis_url });
  const ownedBus = connectRedis === undefined ? undefined : new RedisRevocationBus({ connect: connectRedis, logger });
  let reporter: RevocationReporter | undefined;
  const revocationCounters = { sessionsClosed: 0, queriesAborted: 0 };
  const follower = new RevocationFollower({
    source: caRevocationSource(ca),
    denySet,
    logger,
    bus: ownedBus ?? deps.revocationBus,
    pollIntervalMs: config.revocation_poll_ms,
    stalenessBoundMs: config.staleness_bound_ms,
    onRevoked: (revocation) => {
      let sessions = 0;
      for (const connection of connector.connections()) {
        const cert = new X509Certificate(connection.clientCertDer);
        const spiffeId = connection.clientSpiffeId;
        const trustDomain = new URL(spiffeId).host;
        if (denySet.match({ spiffeId, trustDomain, serial: connection.clientSerial, notBefore: new Date(cert.validFrom) }) === undefined) continue;
        connection.close(`client revoked (revocation sequence ${Number(revocation.sequence)})`);
        sessions++;
      }
      const aborted = queries?.abortRevokedCallers() ?? 0;
      revocationCounters.sessionsClosed += sessions;
      revocationCounters.queriesAborted += aborted;
      reporter?.acknowledge({ sequence: Number(revocation.sequence), streams_closed: 0, sessions_closed: sessions, queries_aborted: aborted });
      if (sessions + aborted > 0) logger.info("revocation enforced in the hub", { [LogField.sequence]: Number(revocation.sequence), sessions_closed: sessions, queries_aborted: aborted });
    },
    onStaleChange: (stale) => server?.setServing(!stale),
  });
  await follower.start();

  const callerNotBefore = new NotBeforeCache();
  queries = new HubQueries({
    operatorTrustDomain: config.operator_trust_domain,
    policy: new LocalPolicyGate(policy),
    audit,
    connector,
    callerRevocation: (peer) => denySet.match({ ...peer, notBefore: callerNotBefore.notBefore(peer.leafDer) }),
    rejectionReason: () => {
      if (follower.isStale()) return follower.reason;
      const ageMs = policy.ageMs();
      if (policy.current() === undefined) return "the hub has not received a policy snapshot yet; check the policy service";
      if (ageMs > config.max_policy_age_ms) return `the policy snapshot is ${ageMs} ms old (limit ${config.max_policy_age_ms} ms); check the policy service`;
      return undefined;
    },
    listRoutes: async () => {
      const [registered, held] = await Promise.all([routeRegistry.list(), connector.listStaticRelayStreams()]);
      const seen = new Set(registered.map((route) => `${route.clientSpiffeId} ${route.relayId}`));
      return [...registered, ...held.filter((route) => !seen.has(`${route.clientSpiffeId} ${route.relayId}`))];
    },
  });
  const hubQueries = queries;
  server = await startGrpcServer({
    name: "hub",
    listen: config.listen,
    logger,
    tls,
    requireClientCert: true,
    verifyPeer: createPeerVerifier(bundles),
    services: [{ definition: HubServiceService, healthName: HUB_HEALTH_NAME, implementation: (rpc) => hubQueries.implementation(rpc) }],
  });

  const renewer = new SvidRenewer({
    credentialsDir: config.credentials_dir,
    caAddress: config.ca_address,
    operatorTrustDomain: config.operator_trust_domain,
    logger,
    onRenewed: (renewed) => {
      credentials = renewed;
      identity = toHubIdentity(renewed);
      tls.update({ ...tls.current(), certChainPem: renewed.certChainPem, privateKeyPem: renewed.privateKeyPem });
      connector.resetChannels();
    },
  });
  renewer.start();

  const running = server;
  if (connectRedis !== undefined) {
    reporter = new RevocationReporter({ connect: connectRedis, nodeId: `hub@${running.address}`, role: "hub", logger, state: () => ({ sequence: denySet.sequence, stale: follower.isStale() }) });
  }
  return {
    address: running.address,
    port: running.port,
    denySet,
    follower,
    connector,
    policy,
    server: running,
    revocationSequence: () => denySet.sequence,
    revocationCounters: () => ({ ...revocationCounters }),
    async close() {
      renewer.stop();
      await follower.stop();
      await reporter?.close();
      await ownedBus?.close();
      refresher.stop();
      policy.stop();
      await connector.close();
      await running.close(1000);
      ca.close();
      policyClient.close();
      audit.close();
      auditClient.close();
      if (redis !== undefined) await redis.quit().catch(() => undefined);
    },
  };
}
