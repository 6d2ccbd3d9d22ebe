import { createCrl } from "../core/identity/index.js";
import { activeCaOf, signingCaOf, type CaContext } from "./context.js";
import { findRevocation } from "./revocations.js";
import { requireTenant } from "./tenants.js";

/** How long a CRL is current (its nextUpdate after thisUpdate): one hour. */
export const CRL_VALIDITY_MS = 3600 * 1000;

/**
 * Builds the signed X.509 CRL (RFC 5280 section 5) of a tenant's signing
 * CA. It lists every unexpired SVID of the tenant that a revocation covers;
 * the CRL number is the CA's latest revocation sequence.
 */
export function tenantCrl(ctx: CaContext, tenantName: string): { crlDer: Buffer; sequence: number } {
  const tenant = requireTenant(ctx, tenantName);
  const now = ctx.now();
  const { revoked, sequence } = ctx.store.transaction(() => {
    const entries: { serial: string; revokedAt: Date }[] = [];
    for (const svid of ctx.store.listSvids({ tenant: tenant.name, validAt: now })) {
      const revocation = findRevocation(ctx, { spiffeId: svid.spiffeId, serial: svid.serial, trustDomain: svid.trustDomain, tenant: svid.tenant });
      if (revocation !== undefined) entries.push({ serial: svid.serial, revokedAt: revocation.revokedAt });
    }
    return { revoked: entries, sequence: ctx.store.latestRevocationSequence() };
  });
  // NOTE: only the signing CA signs the CRL, so during a rollover the SVIDs
  // of the previous CA are listed in a CRL whose issuer did not sign them.
  const ca = signingCaOf(ctx, activeCaOf(ctx, tenant.trustDomain));
  const crlDer = createCrl({ ca, revokedSerials: revoked, thisUpdate: now, nextUpdate: new Date(now.getTime() + CRL_VALIDITY_MS), crlNumber: sequence });
  return { crlDer, sequence };
}
