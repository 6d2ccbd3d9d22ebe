import type { Revocation } from "../../../gen/ewii/ca/v1/ca.js";
import { CAServiceClient } from "../../../gen/ewii/ca/v1/ca.js";
import { asError } from "../errors.js";
import { callUnary } from "../grpc/index.js";
import type { TlsMaterialSource } from "../grpc/index.js";
import { BundleSet, TrustBundle } from "../identity/index.js";
import { LogField, type Logger } from "../log.js";
import type { RevocationSource } from "../revocation/index.js";
import type { WorkloadCredentials } from "./credentials.js";
import { operatorServiceChannel } from "./operator-channel.js";

/** The CA service's SPIFFE ID path in the operator trust domain. */
export const CA_SERVICE_PATH = "/service/ca";

/** Dials the CA service with a workload's SVID, checking the CA's own SPIFFE ID. */
export function dialCa(address: string, credentials: Pick<WorkloadCredentials, "certChainPem" | "privateKeyPem" | "operatorBundlePem">, operatorTrustDomain: string): CAServiceClient {
  return new CAServiceClient(...operatorServiceChannel(address, credentials, operatorTrustDomain, CA_SERVICE_PATH.slice("/service/".length)));
}

/** Reads revocations from the CA for a RevocationFollower. */
export function caRevocationSource(client: CAServiceClient): RevocationSource {
  return {
    async listRevocations(sinceSequence: number): Promise<{ revocations: Revocation[]; latestSequence: number }> {
      const response = await callUnary(client.listRevocations.bind(client), { sinceSequence: BigInt(sinceSequence), limit: 1000 });
      return { revocations: response.revocations, latestSequence: Number(response.latestSequence) };
    },
  };
}

/** Fetches every trust bundle the CA publishes. */
export async function fetchTrustBundles(client: CAServiceClient): Promise<TrustBundle[]> {
  const response = await callUnary(client.listTrustBundles.bind(client), {});
  return response.bundles.map((bundle) => TrustBundle.fromJwks(bundle.trustDomain, bundle.jwks));
}

export interface BundleRefresherOptions {
  client: CAServiceClient;
  bundles: BundleSet;
  /** When set, its trusted CAs follow the union of every bundle. */
  tls?: TlsMaterialSource;
  logger: Logger;
  intervalMs: number;
}

/**
 * Keeps a BundleSet (and the trusted CAs of a server's TLS) in step with
 * the CA's bundles, so a new tenant's clients and a rolled CA are accepted
 * without a restart.
 */
export class BundleRefresher {
  private timer: NodeJS.Timeout | undefined;
  private lastPem = "";

  constructor(private readonly options: BundleRefresherOptions) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => {
        this.options.logger.warn("trust bundle refresh failed; keeping the previous bundles", { [LogField.cause]: asError(err).message });
      });
    }, this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    const fetched = await fetchTrustBundles(this.options.client);
    const seen = new Set<string>();
    for (const bundle of fetched) {
      seen.add(bundle.trustDomain);
      const current = this.options.bundles.get(bundle.trustDomain);
      if (current === undefined || current.sequence !== bundle.sequence) this.options.bundles.set(bundle);
    }
    for (const bundle of this.options.bundles.all()) {
      if (!seen.has(bundle.trustDomain)) this.options.bundles.delete(bundle.trustDomain);
    }
    const pem = this.options.bundles.allAuthoritiesPem();
    if (pem !== this.lastPem && this.options.tls !== undefined) {
      this.options.tls.update({ ...this.options.tls.current(), trustedCasPem: pem });
      this.options.logger.info("trusted CAs updated", { trust_domains: fetched.length });
    }
    this.lastPem = pem;
  }
}
