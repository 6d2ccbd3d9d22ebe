import { X509Certificate } from "node:crypto";

/** Distinct caller certificates remembered; past this the cache starts over. */
export const MAX_CACHED_CALLER_CERTIFICATES = 4_096;

/**
 * Start of validity (notBefore) of caller leaf certificates, keyed by the
 * certificate's DER bytes, so that the per-query revocation check does not
 * parse the same certificate for every query. The value depends only on
 * the bytes, so an entry can never be stale.
 */
export class NotBeforeCache {
  private readonly byDer = new Map<string, Date>();

  notBefore(leafDer: Buffer): Date {
    const key = leafDer.toString("base64");
    let notBefore = this.byDer.get(key);
    if (notBefore === undefined) {
      if (this.byDer.size >= MAX_CACHED_CALLER_CERTIFICATES) this.byDer.clear();
      notBefore = new Date(new X509Certificate(leafDer).validFrom);
      this.byDer.set(key, notBefore);
    }
    return notBefore;
  }
}
