import { createPrivateKey } from "node:crypto";
import { BundleSet, TrustBundle, pemToDerList, verifyX509Svid } from "../core/identity/index.js";
import { componentLogger, LogField, type Logger } from "../core/log.js";
import type { VerifiedPeer } from "../core/session/index.js";
import { loadCredentials, type WorkloadCredentials } from "../core/workload/credentials.js";
import { SvidRenewer } from "../core/workload/renewal.js";
import { allowedHubMatcher, type ClientConfig } from "./config.js";
import { RelayLink, type LinkState } from "./relay-link.js";
import { ClientSessionEndpoint, type EndpointIdentity, type QueryRunner } from "./session-endpoint.js";

/** Gap between link restarts after an SVID renewal, so the client stays reachable through the others. */
const RENEWAL_RECONNECT_STAGGER_MS = 2_000;

export interface RunningClient {
  spiffeId: string;
  links: RelayLink[];
  endpoint: ClientSessionEndpoint;
  /** Link states by relay address. */
  status(): Record<string, LinkState>;
  stop(): Promise<void>;
}

/** Derives the operator trust domain from a tenant trust domain "<tenant>.tenants.<operator>". */
export function operatorTrustDomainOf(tenantTrustDomain: string): string {
  const marker = ".tenants.";
  const at = tenantTrustDomain.indexOf(marker);
  if (at <= 0) throw new Error(`trust domain ${tenantTrustDomain} is not a tenant trust domain of the form <tenant>.tenants.<operator trust domain>`);
  return tenantTrustDomain.slice(at + marker.length);
}

function endpointIdentity(credentials: WorkloadCredentials): EndpointIdentity {
  return { spiffeId: credentials.spiffeId.toString(), certChainDer: pemToDerList(credentials.certChainPem), privateKey: createPrivateKey(credentials.privateKeyPem) };
}

/**
 * Starts a customer client. It dials every configured relay and never
 * listens, serves hub sessions from the install-time allow-list, and renews
 * its SVID at half-life whether or not it is connected.
 */
export function startClient(config: ClientConfig, deps: { logger: Logger; runner: QueryRunner; onRenewed?: () => void }): RunningClient {
  let credentials = loadCredentials(config.identity_dir);
  const logger = componentLogger(deps.logger, "client").child({ [LogField.spiffeId]: credentials.spiffeId.toString() });
  const operatorTrustDomain = operatorTrustDomainOf(credentials.spiffeId.trustDomain);
  let identity = endpointIdentity(credentials);

  // The client trusts hubs only through the operator bundle pinned at enrollment.
  const operatorBundles = new BundleSet();
  operatorBundles.set(TrustBundle.fromPem(operatorTrustDomain, credentials.operatorBundlePem, 0));
  const verifyHub = (chainDer: Uint8Array[]): VerifiedPeer => {
    const verified = verifyX509Svid(chainDer, operatorBundles);
    return { spiffeId: verified.spiffeId.toString(), publicKey: verified.leaf.publicKey, serial: verified.serial };
  };

  const endpoint = new ClientSessionEndpoint({
    identity: () => identity,
    verifyHub,
    isAllowedHub: allowedHubMatcher(config.allowed_hubs, operatorTrustDomain),
    runner: deps.runner,
    logger,
  });

  const links = config.relays.map(
    (address) =>
      new RelayLink({
        address,
        operatorTrustDomain,
        identity: () => credentials,
        logger,
        heartbeatIntervalMs: config.heartbeat_interval_ms,
        deadPeerTimeoutMs: config.dead_peer_timeout_ms,
        backoffInitialMs: config.reconnect.initial_ms,
        backoffMaxMs: config.reconnect.max_ms,
        onFrame: (frame, link) => endpoint.onFrame(frame, link),
        onStateChange: (link, from, _to, reason) => {
          if (from === "connected") endpoint.closeSessionsOf(link, `relay link ${link.address} lost: ${reason}`);
        },
      }),
  );

  const renewer = new SvidRenewer({
    credentialsDir: config.identity_dir,
    caAddress: config.ca,
    operatorTrustDomain,
    logger,
    onRenewed: (renewed) => {
      credentials = renewed;
      identity = endpointIdentity(renewed);
      operatorBundles.set(TrustBundle.fromPem(operatorTrustDomain, renewed.operatorBundlePem, 0));
      deps.onRenewed?.();
      // Hubs verify result signatures with the certificate of the session's
      // handshake, so sessions end here and hubs handshake again.
      endpoint.closeAll("SVID renewed");
      // Reconnect one relay at a time so that the client stays reachable.
      links.forEach((link, i) => {
        const timer = setTimeout(() => link.reconnect("SVID renewed"), i * RENEWAL_RECONNECT_STAGGER_MS);
        timer.unref();
      });
    },
  });

  for (const link of links) link.start();
  renewer.start();
  logger.info("client started", { relays: config.relays, datasets: Object.keys(config.datasets), [LogField.serial]: credentials.serial });

  return {
    spiffeId: credentials.spiffeId.toString(),
    links,
    endpoint,
    status: () => Object.fromEntries(links.map((link) => [link.address, link.state])),
    async stop() {
      renewer.stop();
      endpoint.closeAll("client stopping");
      for (const link of links) link.stop();
      logger.info("client stopped");
    },
  };
}
