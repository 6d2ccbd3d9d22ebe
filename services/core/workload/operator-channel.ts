import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";
import { channelOptions, createClientCredentials, dialTarget } from "../grpc/index.js";
import type { WorkloadCredentials } from "./credentials.js";

/**
 * Builds the target, mTLS credentials and channel options for dialing an
 * operator service with a workload's SVID. The server must present the
 * SPIFFE ID `spiffe://<operator trust domain>/service/<service>`; with
 * `allowInstancePaths` an ID below it (for example `/service/relay/eu-1`)
 * is accepted too. Spread the result into a generated client constructor.
 */
export function operatorServiceChannel(
  address: string,
  credentials: Pick<WorkloadCredentials, "certChainPem" | "privateKeyPem" | "operatorBundlePem">,
  operatorTrustDomain: string,
  service: string,
  options: { allowInstancePaths?: boolean } = {},
): [string, ChannelCredentials, ChannelOptions] {
  const expected = `spiffe://${operatorTrustDomain}/service/${service}`;
  const channelCredentials = createClientCredentials({
    tls: { certChainPem: credentials.certChainPem, privateKeyPem: credentials.privateKeyPem },
    trustedCasPem: credentials.operatorBundlePem,
    expectServer: (spiffeId) => spiffeId === expected || (options.allowInstancePaths === true && spiffeId.startsWith(expected + "/")),
  });
  return [dialTarget(address), channelCredentials, channelOptions(address)];
}
