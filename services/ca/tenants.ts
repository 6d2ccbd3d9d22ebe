import { createHash, randomBytes } from "node:crypto";
import { status } from "@grpc/grpc-js";
import type { Tenant as TenantMessage } from "../../gen/ewii/ca/v1/ca.js";
import { EwiiError } from "../core/errors.js";
import { LogField } from "../core/log.js";
import { bundleCasOf, markBundleChanged } from "./bundles.js";
import { newCaRecord, type CaContext } from "./context.js";
import { CaErrorCode, failedPrecondition, invalidArgument, notFound } from "./errors.js";
import { insertRevocation, publishRevocation } from "./revocations.js";
import type { RevocationRecord, TenantRecord } from "./store.js";

/** Tenant names: a DNS label (RFC 1123) in lowercase, 1 to 63 characters. */
export const TENANT_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Returns the trust domain of a tenant: `<name>.tenants.<operator trust domain>`. */
export function tenantTrustDomain(name: string, operatorTrustDomain: string): string {
  return `${name}.tenants.${operatorTrustDomain}`;
}

/** Returns a new CA id: the owner and a random suffix, so ids never repeat across rollovers. */
export function newCaId(owner: string): string {
  return `${owner}-${randomBytes(8).toString("hex")}`;
}

export function validateTenantName(name: string): void {
  if (!TENANT_NAME_PATTERN.test(name)) {
    throw invalidArgument(
      CaErrorCode.tenantNameInvalid,
      `tenant name "${name.slice(0, 80)}" is invalid: use 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit`,
    );
  }
}

/** Returns a tenant or throws ERR_TENANT_NOT_FOUND. */
export function requireTenant(ctx: CaContext, name: string): TenantRecord {
  const tenant = ctx.store.getTenant(name);
  if (tenant === undefined) throw notFound(CaErrorCode.tenantNotFound, `tenant "${name.slice(0, 80)}" does not exist; list tenants with "ewii tenant list" (ListTenants)`);
  return tenant;
}

/** Throws ERR_TENANT_DISABLED when the tenant is disabled. */
export function requireEnabled(tenant: TenantRecord): void {
  if (!tenant.enabled) {
    throw failedPrecondition(CaErrorCode.tenantDisabled, `tenant "${tenant.name}" is disabled; it gets no tokens, enrollments or renewals`);
  }
}

/** Creates a tenant with its own trust domain and ECDSA P-256 CA. */
export function createTenant(ctx: CaContext, name: string, callerSpiffeId: string): TenantRecord {
  validateTenantName(name);
  const trustDomain = tenantTrustDomain(name, ctx.operatorTrustDomain);
  const now = ctx.now();
  const tenant: TenantRecord = { name, trustDomain, enabled: true, createdAt: now, rolloverPhase: "none" };
  const ca = newCaRecord(ctx.kek, { id: newCaId(name), trustDomain, tenant: name, state: "active", now, validityMs: ctx.caValidityMs });

  ctx.store.transaction(() => {
    if (ctx.store.getTenant(name) !== undefined) {
      throw new EwiiError(CaErrorCode.tenantExists, `tenant "${name}" already exists; pick another name, or show it with "ewii tenant get ${name}" (GetTenant)`, { status: status.ALREADY_EXISTS });
    }
    ctx.store.insertTenant(tenant);
    ctx.store.insertCa(ca);
    markBundleChanged(ctx, trustDomain);
  });
  ctx.logger.info("tenant created", { [LogField.callerSpiffeId]: callerSpiffeId, [LogField.tenant]: name, [LogField.trustDomain]: trustDomain, ca_id: ca.id });
  ctx.onTrustChange?.();
  return tenant;
}

/**
 * Disables a tenant and revokes every SVID it holds, in one transaction,
 * then publishes the revocation.
 */
export async function disableTenant(ctx: CaContext, name: string, callerSpiffeId: string): Promise<{ tenant: TenantRecord; revocation: RevocationRecord }> {
  const { tokensRevoked, ...revocation } = ctx.store.transaction(() => {
    const tenant = requireTenant(ctx, name);
    ctx.store.setTenantEnabled(name, false);
    return insertRevocation(ctx, { target: { kind: "tenant", value: name }, trustDomain: tenant.trustDomain }, "tenant disabled", callerSpiffeId);
  });
  ctx.onTrustChange?.();
  await publishRevocation(ctx, revocation);
  ctx.logger.info("tenant disabled", {
    [LogField.callerSpiffeId]: callerSpiffeId,
    [LogField.tenant]: name,
    [LogField.sequence]: revocation.sequence,
    join_tokens_revoked: tokensRevoked,
  });
  return { tenant: requireTenant(ctx, name), revocation };
}

/** Returns the SHA-256 fingerprints (lowercase hex) of a tenant's bundle CAs, signing CA first. */
export function caFingerprintsOf(ctx: CaContext, trustDomain: string): string[] {
  return bundleCasOf(ctx, trustDomain).map((ca) => createHash("sha256").update(ca.certDer).digest("hex"));
}

export function toTenantMessage(ctx: CaContext, tenant: TenantRecord): TenantMessage {
  return {
    name: tenant.name,
    trustDomain: tenant.trustDomain,
    enabled: tenant.enabled,
    createdAt: tenant.createdAt,
    caFingerprints: caFingerprintsOf(ctx, tenant.trustDomain),
    rolloverPhase: tenant.rolloverPhase,
  };
}
