import { verifyX509Svid, type BundleSource, type TrustBundle } from "../core/identity/index.js";
import type { PeerIdentity, PeerVerifier } from "../core/grpc/index.js";
import { LogField } from "../core/log.js";
import { bundleOf } from "./bundles.js";
import type { CaContext } from "./context.js";
import { CaErrorCode, permissionDenied, unauthenticated } from "./errors.js";
import { findRevocation } from "./revocations.js";

/**
 * Caller authorization of the CA service. TLS trusts the union of the
 * operator root and every tenant CA, so the peer verifier checks that the
 * leaf chains to a CA of the trust domain named in its own SPIFFE ID, that
 * its tenant is enabled and that no revocation covers it.
 */

/** SPIFFE ID path prefix of operator admins. */
export const ADMIN_PATH_PREFIX = "/admin/";

function bundleSource(ctx: CaContext): BundleSource {
  return {
    get(trustDomain: string): TrustBundle | undefined {
      try {
        return bundleOf(ctx, trustDomain);
      } catch {
        // An unknown trust domain has no bundle; verifyX509Svid reports it.
        return undefined;
      }
    },
  };
}

/** Builds the peer verifier the CA's gRPC server runs on every client certificate. */
export function createPeerVerifier(ctx: CaContext): PeerVerifier {
  return (leafDer: Buffer): PeerIdentity => {
    const verified = verifyX509Svid([leafDer], bundleSource(ctx), { now: ctx.now() });
    const spiffeId = verified.spiffeId.toString();
    const trustDomain = verified.spiffeId.trustDomain;
    const tenant = trustDomain === ctx.operatorTrustDomain ? null : (ctx.store.getTenantByTrustDomain(trustDomain) ?? null);
    if (tenant !== null && !tenant.enabled) {
      throw unauthenticated(CaErrorCode.tenantDisabled, `tenant "${tenant.name}" of ${spiffeId} is disabled`);
    }
    const revocation = findRevocation(ctx, { spiffeId, serial: verified.serial, trustDomain, tenant: tenant?.name ?? null });
    if (revocation !== undefined) {
      throw unauthenticated(CaErrorCode.svidRevoked, `the SVID with serial ${verified.serial} for ${spiffeId} is revoked (revocation ${revocation.sequence})`);
    }
    return { spiffeId, trustDomain, path: verified.spiffeId.path, serial: verified.serial, notAfter: verified.notAfter, leafDer };
  };
}

/** Returns the caller, or throws ERR_PEER_REQUIRED when the call came without a client certificate. */
export function requirePeer(peer: PeerIdentity | undefined, method: string): PeerIdentity {
  if (peer === undefined) {
    throw unauthenticated(CaErrorCode.peerRequired, `${method} requires a client certificate; connect with mTLS using a valid SVID`);
  }
  return peer;
}

export function isAdmin(ctx: CaContext, peer: PeerIdentity): boolean {
  return peer.trustDomain === ctx.operatorTrustDomain && peer.path.startsWith(ADMIN_PATH_PREFIX);
}

/** Returns the admin caller or throws ERR_NOT_ADMIN (PERMISSION_DENIED). */
export function requireAdmin(ctx: CaContext, peer: PeerIdentity | undefined, method: string): PeerIdentity {
  const caller = requirePeer(peer, method);
  if (!isAdmin(ctx, caller)) {
    ctx.logger.warn("admin call rejected", { [LogField.callerSpiffeId]: caller.spiffeId, [LogField.method]: method });
    throw permissionDenied(
      CaErrorCode.notAdmin,
      `${caller.spiffeId} may not call ${method}: admin calls need an SVID of trust domain ${ctx.operatorTrustDomain} with a path under ${ADMIN_PATH_PREFIX}`,
    );
  }
  return caller;
}

/**
 * Tests whether a caller may read the trust bundle or CRL of a trust
 * domain. Operator workloads read any. A tenant workload reads only its own
 * tenant's and the operator's, so that no tenant learns another's CAs or
 * revoked serials.
 */
export function mayReadTrustDomain(ctx: CaContext, peer: PeerIdentity, trustDomain: string): boolean {
  return peer.trustDomain === ctx.operatorTrustDomain || trustDomain === ctx.operatorTrustDomain || trustDomain === peer.trustDomain;
}

/** Throws ERR_TENANT_ACCESS_DENIED (PERMISSION_DENIED) unless mayReadTrustDomain allows the read. */
export function requireTrustDomainAccess(ctx: CaContext, peer: PeerIdentity, trustDomain: string, method: string): void {
  if (mayReadTrustDomain(ctx, peer, trustDomain)) return;
  ctx.logger.warn("cross-tenant read rejected", { [LogField.callerSpiffeId]: peer.spiffeId, [LogField.method]: method, [LogField.trustDomain]: trustDomain });
  throw permissionDenied(
    CaErrorCode.tenantAccessDenied,
    `${peer.spiffeId} may not call ${method} for another tenant: a tenant workload reads only its own tenant's data and the operator trust domain ${ctx.operatorTrustDomain}`,
  );
}

/** Returns a caller of the operator trust domain (any workload there, admins included) or throws ERR_NOT_ADMIN. */
export function requireOperatorWorkload(ctx: CaContext, peer: PeerIdentity | undefined, method: string): PeerIdentity {
  const caller = requirePeer(peer, method);
  if (caller.trustDomain !== ctx.operatorTrustDomain) {
    throw permissionDenied(CaErrorCode.notAdmin, `${caller.spiffeId} may not call ${method}: it needs an SVID of trust domain ${ctx.operatorTrustDomain}`);
  }
  return caller;
}
