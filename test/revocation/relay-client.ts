import { readFileSync } from "node:fs";
import { credentialPaths } from "../../services/ca/credentials.js";
import { RelayLink, type LinkState } from "../../services/client/relay-link.js";
import { silentLogger } from "../../services/core/log.js";
import type { RevocationBus } from "../../services/core/revocation/index.js";
import { relayConfigSchema } from "../../services/relay/config.js";
import { startRelay, type RunningRelay } from "../../services/relay/server.js";
import { OPERATOR_TD, type CaFixture } from "../ca/fixture.js";

/** Starts a real relay against the fixture's CA, on Redis when `redisUrl` is given. */
export async function startTestRelay(ca: CaFixture, caPort: number, relayId: string, bus: { redisUrl?: string; revocationBus?: RevocationBus }): Promise<RunningRelay> {
  const config = relayConfigSchema.parse({
    listen: "127.0.0.1:0",
    relay_id: relayId,
    operator_trust_domain: OPERATOR_TD,
    credentials_dir: credentialPaths(ca.dataDir, "relay").dir,
    ca_address: `127.0.0.1:${caPort}`,
    redis_url: bus.redisUrl,
    revocation_poll_ms: 60_000,
    log_level: "error",
  });
  return startRelay({ ...config, relay_id: relayId }, { logger: silentLogger(), revocationBus: bus.revocationBus });
}

/** A client's outbound stream to one relay, recording every state change and its reason. */
export class TestClientLink {
  readonly link: RelayLink;
  readonly transitions: { to: LinkState; reason: string; atMs: number }[] = [];

  constructor(address: string, tls: { certChainPem: string; privateKeyPem: string }, operatorBundlePem: string) {
    this.link = new RelayLink({
      address,
      operatorTrustDomain: OPERATOR_TD,
      identity: () => ({ ...tls, operatorBundlePem }),
      logger: silentLogger(),
      heartbeatIntervalMs: 1_000,
      deadPeerTimeoutMs: 5_000,
      backoffInitialMs: 50,
      backoffMaxMs: 200,
      onFrame: () => undefined,
      onStateChange: (_link, _from, to, reason) => this.transitions.push({ to, reason, atMs: performance.now() }),
    });
    this.link.start();
  }

  /** Connection attempts that ended in backoff after index `from` of the transitions. */
  failedAttemptsSince(from: number): number {
    return this.transitions.slice(from).filter((t) => t.to === "backoff").length;
  }

  stop(): void {
    this.link.stop();
  }
}

export function operatorBundle(ca: CaFixture): string {
  return readFileSync(credentialPaths(ca.dataDir, "relay").bundle, "utf8");
}
