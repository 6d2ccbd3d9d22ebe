import type { Logger } from "../log.js";
import { SvidRenewer } from "./renewal.js";

/**
 * Starts SVID renewal for a service that reads its TLS files from
 * `credentials_dir` and reloads them on change (policy, audit): the renewer
 * rewrites the files and the file watcher picks them up. Returns undefined
 * when no CA address is configured, in which case the SVID must be renewed
 * from outside, for example by restarting `ewii dev`.
 */
export function startOwnSvidRenewal(config: { credentials_dir: string; ca_address?: string; operator_trust_domain: string }, logger: Logger): SvidRenewer | undefined {
  if (config.ca_address === undefined) {
    logger.warn("no ca_address configured: this service will not renew its own SVID", { credentials_dir: config.credentials_dir });
    return undefined;
  }
  const renewer = new SvidRenewer({
    credentialsDir: config.credentials_dir,
    caAddress: config.ca_address,
    operatorTrustDomain: config.operator_trust_domain,
    logger,
    onRenewed: () => undefined,
  });
  renewer.start();
  return renewer;
}
