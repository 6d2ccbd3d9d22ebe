import type {
  CAServiceServer,
  Revocation as RevocationMessage,
  Svid as SvidMessage,
  SvidRecord as SvidRecordMessage,
} from "../../gen/ewii/ca/v1/ca.js";
import type { PeerIdentity, RpcContext, RpcEdge } from "../core/grpc/index.js";
import { LogField } from "../core/log.js";
import { mayReadTrustDomain, requireAdmin, requireOperatorWorkload, requirePeer, requireTrustDomainAccess } from "./auth.js";
import { bundleOf, servedTrustDomains, toBundleMessage } from "./bundles.js";
import type { CaContext } from "./context.js";
import { tenantCrl } from "./crl.js";
import { CaErrorCode, invalidArgument } from "./errors.js";
import { createGroupCommitter } from "./group-commit.js";
import { enroll, renew, type IssuedCredential } from "./issuance.js";
import { activateRollover, prepareRollover, retireRollover } from "./rollover.js";
import { findRevocation, listRevocations, revoke, targetToMessage } from "./revocations.js";
import { createTenant, disableTenant, requireTenant, tenantTrustDomain, toTenantMessage } from "./tenants.js";
import { createJoinToken } from "./tokens.js";
import type { RevocationRecord, SvidRecord } from "./store.js";

/** Settings of the CAService handlers that are not part of the CA context. */
export interface CaServiceOptions {
  /** Join token lifetime when a request gives none, in milliseconds. */
  tokenTtlMs: number;
}

function toSvidMessage(credential: IssuedCredential): SvidMessage {
  const { record } = credential;
  return { spiffeId: record.spiffeId, certChainDer: credential.certChainDer, serial: record.serial, notBefore: record.notBefore, notAfter: record.notAfter };
}

export function toRevocationMessage(revocation: RevocationRecord): RevocationMessage {
  return {
    sequence: BigInt(revocation.sequence),
    target: targetToMessage(revocation.target),
    reason: revocation.reason,
    revokedAt: revocation.revokedAt,
    revokedBy: revocation.revokedBy,
    expiresAt: revocation.expiresAt,
    trustDomain: revocation.trustDomain,
  };
}

function toSvidRecordMessage(ctx: CaContext, svid: SvidRecord): SvidRecordMessage {
  const revoked = findRevocation(ctx, { spiffeId: svid.spiffeId, serial: svid.serial, trustDomain: svid.trustDomain, tenant: svid.tenant }) !== undefined;
  return {
    serial: svid.serial,
    spiffeId: svid.spiffeId,
    tenant: svid.tenant ?? "",
    notBefore: svid.notBefore,
    notAfter: svid.notAfter,
    revoked,
    issuedBy: svid.issuedBy,
  };
}

function requireField(value: string, field: string): string {
  if (value === "") throw invalidArgument(CaErrorCode.argumentMissing, `${field} is required`);
  return value;
}

/** Bounds a proto uint64 sequence to a safe integer (sequences never come near 2^53). */
function toSequence(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** Logs an admin read; state changes are logged by the domain modules with their ids. */
function logAdminRead(ctx: RpcContext, caller: PeerIdentity, action: string, ids: Record<string, string> = {}): void {
  ctx.logger.info("admin request", { [LogField.callerSpiffeId]: caller.spiffeId, action, ...ids });
}

/** Builds the CAService handlers on the server's RPC edge. */
export function caServiceImplementation(ca: CaContext, options: CaServiceOptions): (rpc: RpcEdge) => CAServiceServer {
  const issuance = createGroupCommitter(ca.store);
  return (rpc) => ({
    enroll: rpc.unary(
      async (req) => {
        const issued = await issuance.run(() => enroll(ca, { joinToken: req.joinToken, csrDer: req.csrDer }));
        return {
          svid: toSvidMessage(issued),
          tenantBundle: toBundleMessage(bundleOf(ca, issued.record.trustDomain)),
          operatorBundle: toBundleMessage(bundleOf(ca, ca.operatorTrustDomain)),
        };
      },
      { allowAnonymous: true },
    ),

    renew: rpc.unary(async (req, ctx) => {
      const peer = requirePeer(ctx.peer, ctx.method);
      const issued = await issuance.run(() => renew(ca, { spiffeId: peer.spiffeId, serial: peer.serial }, req.csrDer));
      return {
        svid: toSvidMessage(issued),
        bundle: toBundleMessage(bundleOf(ca, peer.trustDomain)),
        operatorBundle: toBundleMessage(bundleOf(ca, ca.operatorTrustDomain)),
      };
    }),

    getTrustBundle: rpc.unary(async (req, ctx) => {
      const peer = requirePeer(ctx.peer, ctx.method);
      const trustDomain = requireField(req.trustDomain, "trust_domain");
      requireTrustDomainAccess(ca, peer, trustDomain, ctx.method);
      return { bundle: toBundleMessage(bundleOf(ca, trustDomain)) };
    }),

    // Operator workloads get every enabled trust domain; a tenant workload gets its own and the operator's.
    listTrustBundles: rpc.unary(async (_req, ctx) => {
      const peer = requirePeer(ctx.peer, ctx.method);
      const bundles = servedTrustDomains(ca, { enabledOnly: true })
        .filter((trustDomain) => mayReadTrustDomain(ca, peer, trustDomain))
        .map((trustDomain) => toBundleMessage(bundleOf(ca, trustDomain)));
      return { bundles };
    }),

    createTenant: rpc.unary(async (req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      return { tenant: toTenantMessage(ca, createTenant(ca, requireField(req.name, "name"), caller.spiffeId)) };
    }),

    listTenants: rpc.unary(async (_req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      logAdminRead(ctx, caller, "list_tenants");
      return { tenants: ca.store.listTenants().map((tenant) => toTenantMessage(ca, tenant)) };
    }),

    getTenant: rpc.unary(async (req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      logAdminRead(ctx, caller, "get_tenant", { [LogField.tenant]: req.name });
      return { tenant: toTenantMessage(ca, requireTenant(ca, requireField(req.name, "name"))) };
    }),

    disableTenant: rpc.unary(async (req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      const { tenant, revocation } = await disableTenant(ca, requireField(req.name, "name"), caller.spiffeId);
      return { tenant: toTenantMessage(ca, tenant), revocation: toRevocationMessage(revocation) };
    }),

    createJoinToken: rpc.unary(async (req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      const created = createJoinToken(ca, {
        tenant: requireField(req.tenant, "tenant"),
        spiffeIdPath: requireField(req.spiffeIdPath, "spiffe_id_path"),
        ttlSeconds: req.ttlSeconds,
        callerSpiffeId: caller.spiffeId,
        defaultTtlMs: options.tokenTtlMs,
      });
      return { token: created.token, spiffeId: created.spiffeId, expiresAt: created.expiresAt };
    }),

    listSvids: rpc.unary(async (req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      logAdminRead(ctx, caller, "list_svids", { [LogField.tenant]: req.tenant });
      if (req.tenant !== "") requireTenant(ca, req.tenant);
      const records = ca.store.listSvids({
        tenant: req.tenant === "" ? undefined : req.tenant,
        validAt: req.includeExpired ? undefined : ca.now(),
      });
      return { svids: records.map((svid) => toSvidRecordMessage(ca, svid)) };
    }),

    revoke: rpc.unary(async (req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      if (req.target === undefined) throw invalidArgument(CaErrorCode.revocationTargetInvalid, "target is required");
      const revocation = await revoke(ca, req.target, req.reason, caller.spiffeId);
      return { revocation: toRevocationMessage(revocation) };
    }),

    // Relays, hubs and admins read every tenant's revocations; tenant workloads read none.
    listRevocations: rpc.unary(async (req, ctx) => {
      requireOperatorWorkload(ca, ctx.peer, ctx.method);
      const page = listRevocations(ca, toSequence(req.sinceSequence), req.limit);
      return { revocations: page.revocations.map(toRevocationMessage), latestSequence: BigInt(page.latestSequence) };
    }),

    prepareRollover: rpc.unary(async (req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      const tenant = prepareRollover(ca, requireField(req.tenant, "tenant"), caller.spiffeId);
      return { tenant: toTenantMessage(ca, tenant), bundle: toBundleMessage(bundleOf(ca, tenant.trustDomain)) };
    }),

    activateRollover: rpc.unary(async (req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      return { tenant: toTenantMessage(ca, activateRollover(ca, requireField(req.tenant, "tenant"), caller.spiffeId)) };
    }),

    retireRollover: rpc.unary(async (req, ctx) => {
      const caller = requireAdmin(ca, ctx.peer, ctx.method);
      const tenant = retireRollover(ca, requireField(req.tenant, "tenant"), req.force, caller.spiffeId);
      return { tenant: toTenantMessage(ca, tenant), bundle: toBundleMessage(bundleOf(ca, tenant.trustDomain)) };
    }),

    getCrl: rpc.unary(async (req, ctx) => {
      const peer = requirePeer(ctx.peer, ctx.method);
      const name = requireField(req.tenant, "tenant");
      // Checked before the lookup, so a tenant workload cannot probe which other tenants exist.
      requireTrustDomainAccess(ca, peer, tenantTrustDomain(name, ca.operatorTrustDomain), ctx.method);
      const tenant = requireTenant(ca, name);
      const crl = tenantCrl(ca, tenant.name);
      return { crlDer: crl.crlDer, sequence: BigInt(crl.sequence) };
    }),
  });
}
