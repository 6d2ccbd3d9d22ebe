import { asError, errorCodeOf } from "../errors.js";
import { callUnary } from "../grpc/index.js";
import { createCsr, derToPem, generateKeyPair, privateKeyToPem } from "../identity/index.js";
import { LogField, type Logger } from "../log.js";
import { dialCa } from "./ca-link.js";
import { loadCredentials, writeCredentialFiles, type WorkloadCredentials } from "./credentials.js";

export interface SvidRenewerOptions {
  credentialsDir: string;
  caAddress: string;
  operatorTrustDomain: string;
  logger: Logger;
  /** Called after new files are written, with the reloaded credentials. */
  onRenewed: (credentials: WorkloadCredentials) => void;
  /** Shortest wait between failed attempts, in milliseconds. */
  retryInitialMs?: number;
  now?: () => number;
  random?: () => number;
}

/** Fraction of the SVID lifetime after which renewal starts. */
export const RENEWAL_FRACTION = 0.5;
/** Largest random amount taken off the renewal time, as a fraction of the lifetime. */
export const RENEWAL_JITTER_FRACTION = 0.1;

/**
 * Renews a workload's SVID at half its lifetime, less a random jitter so
 * that a fleet enrolled together does not renew together. Each renewal uses
 * a fresh key and authenticates with the current SVID over mTLS. Failures
 * retry with exponential backoff, and renewal keeps trying while the
 * workload is disconnected from its relays.
 */
export class SvidRenewer {
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly options: SvidRenewerOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** Milliseconds from now until renewal of an SVID valid from notBefore to notAfter. */
  delayUntilRenewalMs(notBefore: Date, notAfter: Date): number {
    const lifetimeMs = notAfter.getTime() - notBefore.getTime();
    const renewAtMs = notBefore.getTime() + lifetimeMs * RENEWAL_FRACTION - this.random() * lifetimeMs * RENEWAL_JITTER_FRACTION;
    return Math.max(0, renewAtMs - this.now());
  }

  start(): void {
    const current = loadCredentials(this.options.credentialsDir);
    this.schedule(this.delayUntilRenewalMs(current.notBefore, current.notAfter));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /** Renews at once and returns the new credentials. */
  async renewNow(): Promise<WorkloadCredentials> {
    const current = loadCredentials(this.options.credentialsDir);
    const ca = dialCa(this.options.caAddress, current, this.options.operatorTrustDomain);
    try {
      const keyPair = generateKeyPair();
      const response = await callUnary(ca.renew.bind(ca), { csrDer: createCsr(keyPair) });
      if (response.svid === undefined) throw new Error("the CA returned no SVID");
      writeCredentialFiles(this.options.credentialsDir, {
        svid: response.svid.certChainDer.map((der) => derToPem(der, "CERTIFICATE")).join(""),
        key: privateKeyToPem(keyPair.privateKey),
        ...(response.operatorBundle === undefined ? {} : { operatorBundle: response.operatorBundle.pem }),
        ...(response.bundle !== undefined && current.tenantBundlePem !== undefined ? { tenantBundle: response.bundle.pem } : {}),
      });
      const renewed = loadCredentials(this.options.credentialsDir);
      this.options.logger.info("SVID renewed", { [LogField.spiffeId]: renewed.spiffeId.toString(), [LogField.serial]: renewed.serial, previous_serial: current.serial, not_after: renewed.notAfter.toISOString() });
      return renewed;
    } finally {
      ca.close();
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.attempt(), Math.min(delayMs, 2 ** 31 - 1));
    this.timer.unref();
  }

  private async attempt(): Promise<void> {
    try {
      const renewed = await this.renewNow();
      this.failures = 0;
      this.options.onRenewed(renewed);
      this.schedule(this.delayUntilRenewalMs(renewed.notBefore, renewed.notAfter));
    } catch (err) {
      this.failures++;
      const current = loadCredentials(this.options.credentialsDir);
      const remainingMs = current.notAfter.getTime() - this.now();
      // Retry well before expiry: back off exponentially, but wait at most
      // a tenth of the remaining validity, or one second when that is less.
      const ceilingMs = Math.max(1000, Math.min((this.options.retryInitialMs ?? 1000) * 2 ** Math.min(this.failures, 20), remainingMs / 10));
      const delayMs = Math.floor(this.random() * ceilingMs);
      this.options.logger.warn("SVID renewal failed; retrying", {
        [LogField.errorCode]: errorCodeOf(err) ?? "ERR_RENEWAL_FAILED",
        [LogField.cause]: asError(err).message,
        retry_in_ms: delayMs,
        remaining_validity_ms: remainingMs,
      });
      this.schedule(delayMs);
    }
  }
}
