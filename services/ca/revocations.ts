import { status } from "@grpc/grpc-js";
import { EwiiError } from "../core/errors.js";
import { LogField } from "../core/log.js";
import { NOT_BEFORE_BACKDATE_MS, SpiffeId } from "../core/identity/index.js";
import { CaErrorCode, invalidArgument, notFound } from "./errors.js";
import type { CaContext } from "./context.js";
import type { RevocationRecord, RevocationTargetKind, RevocationTargetRecord } from "./store.js";

/**
 * Revocations: persisted with a strictly increasing sequence, then
 * published. A revocation of a SPIFFE ID, path prefix or tenant covers the
 * certificates issued up to its time and the unused join tokens created
 * before it. An enrollment with a token created later yields a valid SVID
 * again. A serial revocation covers that one certificate.
 */

/** Maximum reason length, in characters. */
export const MAX_REASON_CHARS = 256;
/** Entries returned by listRevocations when the caller sets no limit. */
export const DEFAULT_LIST_LIMIT = 1000;
/** Upper bound on the entries of one listRevocations page. */
export const MAX_LIST_LIMIT = 10_000;

/** A revocation target as the RPC carries it: exactly one field set. */
export interface RevocationTargetInput {
  spiffeId?: string;
  serial?: string;
  pathPrefix?: string;
  tenant?: string;
}

/** A validated target and the trust domain it belongs to. */
export interface ResolvedTarget {
  target: RevocationTargetRecord;
  trustDomain: string;
}

/** Validates a target and normalizes it: path prefixes lose their trailing slash, serials are lowercased. */
export function resolveTarget(ctx: CaContext, input: RevocationTargetInput): ResolvedTarget {
  const set = (Object.entries(input) as [string, string | undefined][]).filter(([, value]) => value !== undefined);
  if (set.length !== 1) {
    throw invalidArgument(CaErrorCode.revocationTargetInvalid, `a revocation target needs exactly one of spiffe_id, serial, path_prefix or tenant, got ${set.length}`);
  }
  const [field, raw] = set[0] as [keyof RevocationTargetInput, string];
  switch (field) {
    case "spiffeId": {
      const id = SpiffeId.parse(raw);
      if (id.path === "") throw invalidArgument(CaErrorCode.revocationTargetInvalid, `spiffe_id ${raw} has no path; revoke a whole trust domain with path_prefix or tenant`);
      requireServedTrustDomain(ctx, id.trustDomain, "spiffe_id");
      return { target: { kind: "spiffe_id", value: id.toString() }, trustDomain: id.trustDomain };
    }
    case "serial": {
      const serial = raw.toLowerCase().replace(/^0+(?=.)/, "");
      if (!/^[0-9a-f]{1,40}$/.test(serial)) {
        throw invalidArgument(CaErrorCode.revocationTargetInvalid, `serial "${raw.slice(0, 64)}" is not a hexadecimal serial number of at most 20 bytes`);
      }
      const svid = ctx.store.getSvid(serial);
      if (svid === undefined) throw notFound(CaErrorCode.serialNotFound, `no SVID with serial ${serial} was issued by this CA; list serials with "ewii svid list" (ListSvids)`);
      return { target: { kind: "serial", value: serial }, trustDomain: svid.trustDomain };
    }
    case "pathPrefix": {
      const id = parsePathPrefix(raw);
      requireServedTrustDomain(ctx, id.trustDomain, "path_prefix");
      return { target: { kind: "path_prefix", value: id.toString() }, trustDomain: id.trustDomain };
    }
    case "tenant": {
      const tenant = ctx.store.getTenant(raw);
      if (tenant === undefined) throw notFound(CaErrorCode.tenantNotFound, `tenant "${raw.slice(0, 64)}" does not exist; list tenants with "ewii tenant list" (ListTenants)`);
      return { target: { kind: "tenant", value: tenant.name }, trustDomain: tenant.trustDomain };
    }
  }
}

/**
 * Parses a path prefix: a SPIFFE ID with at most one trailing slash, for
 * example "spiffe://acme.tenants.operator.example/client/" or the bare
 * trust domain "spiffe://acme.tenants.operator.example/".
 */
function parsePathPrefix(raw: string): SpiffeId {
  const trimmed = raw.endsWith("/") ? raw.slice(0, -1) : raw;
  try {
    return SpiffeId.parse(trimmed);
  } catch (err: unknown) {
    const rule = err instanceof EwiiError ? err.message : String(err);
    throw invalidArgument(
      CaErrorCode.revocationTargetInvalid,
      `path_prefix "${raw.slice(0, 200)}" is not a valid SPIFFE ID path prefix (${rule}); give "spiffe://<trust domain>/<path>", optionally ending in "/"`,
    );
  }
}

/** Throws ERR_TRUST_DOMAIN_UNKNOWN unless the trust domain is the operator's or a tenant's. */
function requireServedTrustDomain(ctx: CaContext, trustDomain: string, field: string): void {
  if (trustDomain === ctx.operatorTrustDomain || ctx.store.getTenantByTrustDomain(trustDomain) !== undefined) return;
  throw notFound(
    CaErrorCode.trustDomainUnknown,
    `${field} names trust domain "${trustDomain}", which this CA does not serve; use the operator trust domain ${ctx.operatorTrustDomain} or a tenant's (see "ewii tenant list")`,
  );
}

/**
 * Persists a revocation with the next sequence number and invalidates the
 * unused join tokens it covers, so that a token created before the
 * revocation cannot enroll the revoked identity again. Call inside a store
 * transaction; the caller publishes the result after the commit.
 */
export function insertRevocation(ctx: CaContext, resolved: ResolvedTarget, reason: string, revokedBy: string): RevocationRecord & { tokensRevoked: number } {
  if (reason.length > MAX_REASON_CHARS) {
    throw new EwiiError(CaErrorCode.revocationReasonTooLong, `reason is ${reason.length} characters, more than ${MAX_REASON_CHARS}; shorten it`, {
      status: status.INVALID_ARGUMENT,
    });
  }
  const revokedAt = ctx.now();
  const latest = ctx.store.latestNotAfterCovered(resolved.target, revokedAt);
  const expiresAt = latest !== null && latest.getTime() > revokedAt.getTime() ? latest : revokedAt;
  const revocation = ctx.store.insertRevocation({ target: resolved.target, trustDomain: resolved.trustDomain, reason, revokedBy, revokedAt, expiresAt });
  return { ...revocation, tokensRevoked: ctx.store.revokeUnusedJoinTokens(revocation) };
}

/** Publishes a committed revocation; a failed publish is logged, because subscribers catch up by sequence. */
export async function publishRevocation(ctx: CaContext, revocation: RevocationRecord): Promise<void> {
  try {
    await ctx.publisher.publish(revocation);
  } catch (err: unknown) {
    ctx.logger.warn("revocation publish failed; subscribers will fetch it with ListRevocations", {
      [LogField.sequence]: revocation.sequence,
      [LogField.cause]: err instanceof Error ? err.message : String(err),
    });
  }
}

/** Validates, persists and publishes a revocation. */
export async function revoke(ctx: CaContext, input: RevocationTargetInput, reason: string, revokedBy: string): Promise<RevocationRecord> {
  const { tokensRevoked, ...revocation } = ctx.store.transaction(() => insertRevocation(ctx, resolveTarget(ctx, input), reason, revokedBy));
  ctx.logger.info("revocation persisted", {
    [LogField.callerSpiffeId]: revokedBy,
    [LogField.sequence]: revocation.sequence,
    [LogField.trustDomain]: revocation.trustDomain,
    target_kind: revocation.target.kind,
    target: revocation.target.value,
    expires_at: revocation.expiresAt.toISOString(),
    join_tokens_revoked: tokensRevoked,
  });
  await publishRevocation(ctx, revocation);
  return revocation;
}

/** Returns revocations after `sinceSequence`, at most `limit` (0 means the default). */
export function listRevocations(ctx: CaContext, sinceSequence: number, limit: number): { revocations: RevocationRecord[]; latestSequence: number } {
  const pageSize = limit === 0 ? DEFAULT_LIST_LIMIT : Math.min(limit, MAX_LIST_LIMIT);
  return ctx.store.transaction(() => ({
    revocations: ctx.store.listRevocations(sinceSequence, pageSize),
    latestSequence: ctx.store.latestRevocationSequence(),
  }));
}

export interface RevocationCheck {
  spiffeId: string;
  serial: string;
  trustDomain: string;
  /** Tenant name, or null for the operator trust domain; looked up from the trust domain when undefined. */
  tenant?: string | null;
}

/**
 * Returns the issue time of an SVID as its certificate shows it: notBefore
 * (whole seconds) plus the backdate. Relays and hubs see only the
 * certificate, so the CA judges revocations by the same time.
 */
export function certificateIssueTime(notBefore: Date): Date {
  return new Date(notBefore.getTime() + NOT_BEFORE_BACKDATE_MS);
}

/**
 * Returns the revocation that covers a certificate, or undefined. A serial
 * this CA never issued counts as issued at the epoch, so any matching
 * SPIFFE ID, prefix or tenant revocation covers it.
 */
export function findRevocation(ctx: CaContext, check: RevocationCheck): RevocationRecord | undefined {
  const svid = ctx.store.getSvid(check.serial);
  const tenant = check.tenant !== undefined ? check.tenant : (ctx.store.getTenantByTrustDomain(check.trustDomain)?.name ?? null);
  return ctx.store.findCoveringRevocation({
    spiffeId: check.spiffeId,
    serial: check.serial,
    tenant,
    issuedAt: svid === undefined ? new Date(0) : certificateIssueTime(svid.notBefore),
  });
}

export function isRevoked(ctx: CaContext, check: RevocationCheck): boolean {
  return findRevocation(ctx, check) !== undefined;
}

/** The RPC form of a target kind, for responses. */
export function targetToMessage(target: RevocationTargetRecord): RevocationTargetInput {
  const field: Record<RevocationTargetKind, keyof RevocationTargetInput> = {
    spiffe_id: "spiffeId",
    serial: "serial",
    path_prefix: "pathPrefix",
    tenant: "tenant",
  };
  return { [field[target.kind]]: target.value };
}
