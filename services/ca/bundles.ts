import { X509Certificate } from "node:crypto";
import type { TrustBundle as TrustBundleMessage } from "../../gen/ewii/ca/v1/ca.js";
import { TrustBundle } from "../core/identity/index.js";
import { notFound, CaErrorCode } from "./errors.js";
import type { CaContext } from "./context.js";
import type { CaRecord, CaState } from "./store.js";

/**
 * Trust bundles per trust domain. A bundle's authorities are the CAs of
 * the trust domain in state active, prepared or previous, signing CA first.
 * The stored sequence increments on every change of that set.
 */

/** CA states whose certificates belong to the trust bundle. */
export const BUNDLE_CA_STATES: readonly CaState[] = ["active", "prepared", "previous"];

/** Orders a bundle's CAs: the signing CA first, then prepared, then previous. */
const STATE_ORDER: Record<CaState, number> = { active: 0, prepared: 1, previous: 2, retired: 3 };

/** Lists the CAs in a trust domain's bundle, signing CA first. */
export function bundleCasOf(ctx: CaContext, trustDomain: string): CaRecord[] {
  return ctx.store.listCas(trustDomain, BUNDLE_CA_STATES).sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state]);
}

/** Returns the current bundle of a trust domain. Throws ERR_TRUST_DOMAIN_UNKNOWN. */
export function bundleOf(ctx: CaContext, trustDomain: string): TrustBundle {
  const cas = bundleCasOf(ctx, trustDomain);
  if (cas.length === 0) {
    throw notFound(CaErrorCode.trustDomainUnknown, `trust domain "${trustDomain}" is not served by this CA; use the operator trust domain or a tenant's (see "ewii tenant list")`);
  }
  const authorities = cas.map((ca) => new X509Certificate(ca.certDer));
  return new TrustBundle(trustDomain, authorities, ctx.store.getBundleSequence(trustDomain));
}

/** Records a change of a trust domain's authorities; call inside the transaction that changed them. */
export function markBundleChanged(ctx: CaContext, trustDomain: string): number {
  return ctx.store.incrementBundleSequence(trustDomain);
}

/** Trust domains served: the operator's first, then every tenant's (enabled or not), by tenant name. */
export function servedTrustDomains(ctx: CaContext, options: { enabledOnly: boolean }): string[] {
  const tenants = ctx.store.listTenants().filter((tenant) => tenant.enabled || !options.enabledOnly);
  return [ctx.operatorTrustDomain, ...tenants.map((tenant) => tenant.trustDomain)];
}

export function toBundleMessage(bundle: TrustBundle): TrustBundleMessage {
  return { trustDomain: bundle.trustDomain, sequence: BigInt(bundle.sequence), jwks: bundle.toJwks(), pem: bundle.toPem() };
}
