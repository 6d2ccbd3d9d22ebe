import { LogField } from "../core/log.js";
import { markBundleChanged } from "./bundles.js";
import { newCaRecord, type CaContext } from "./context.js";
import { CaErrorCode, failedPrecondition } from "./errors.js";
import { isRevoked } from "./revocations.js";
import { newCaId, requireTenant } from "./tenants.js";
import type { RolloverPhase, TenantRecord } from "./store.js";

/**
 * Tenant CA rollover, a state machine over the tenant's rollover phase:
 *   none --prepare--> prepared --activate--> activated --retire--> none
 * prepare adds a new CA to the bundle while the current one keeps signing;
 * activate makes the new CA sign and keeps the old one in the bundle as
 * "previous"; retire drops the previous CA once no SVID it signed is valid.
 */

function requirePhase(tenant: TenantRecord, expected: RolloverPhase, action: string): void {
  if (tenant.rolloverPhase !== expected) {
    throw failedPrecondition(
      CaErrorCode.rolloverPhase,
      `cannot ${action} the rollover of tenant "${tenant.name}": it is in phase "${tenant.rolloverPhase}", expected "${expected}"`,
    );
  }
}

export function prepareRollover(ctx: CaContext, name: string, callerSpiffeId: string): TenantRecord {
  const now = ctx.now();
  const tenant = ctx.store.transaction(() => {
    const current = requireTenant(ctx, name);
    requirePhase(current, "none", "prepare");
    const ca = newCaRecord(ctx.kek, { id: newCaId(name), trustDomain: current.trustDomain, tenant: name, state: "prepared", now, validityMs: ctx.caValidityMs });
    ctx.store.insertCa(ca);
    ctx.store.setTenantRolloverPhase(name, "prepared");
    markBundleChanged(ctx, current.trustDomain);
    ctx.logger.info("CA rollover prepared", { [LogField.callerSpiffeId]: callerSpiffeId, [LogField.tenant]: name, ca_id: ca.id });
    return requireTenant(ctx, name);
  });
  ctx.onTrustChange?.();
  return tenant;
}

export function activateRollover(ctx: CaContext, name: string, callerSpiffeId: string): TenantRecord {
  const tenant = ctx.store.transaction(() => {
    const current = requireTenant(ctx, name);
    requirePhase(current, "prepared", "activate");
    const [prepared] = ctx.store.listCas(current.trustDomain, ["prepared"]);
    const active = ctx.store.listCas(current.trustDomain, ["active"]);
    if (prepared === undefined) throw failedPrecondition(CaErrorCode.storeCorrupt, `tenant "${name}" is in phase "prepared" without a prepared CA; the CA store is damaged`);
    for (const old of active) ctx.store.setCaState(old.id, "previous");
    ctx.store.setCaState(prepared.id, "active");
    ctx.store.setTenantRolloverPhase(name, "activated");
    // The authorities stay the same but their order changes: the signing CA comes first.
    markBundleChanged(ctx, current.trustDomain);
    ctx.logger.info("CA rollover activated", {
      [LogField.callerSpiffeId]: callerSpiffeId,
      [LogField.tenant]: name,
      ca_id: prepared.id,
      previous_ca_ids: active.map((ca) => ca.id).join(","),
    });
    return requireTenant(ctx, name);
  });
  ctx.onTrustChange?.();
  return tenant;
}

/**
 * Removes the previous CA from the bundle. Rejected with
 * ERR_ROLLOVER_PREVIOUS_STILL_VALID while an unrevoked SVID it signed is unexpired,
 * unless `force` is set; forced retirement invalidates those SVIDs at once.
 */
export function retireRollover(ctx: CaContext, name: string, force: boolean, callerSpiffeId: string): TenantRecord {
  const now = ctx.now();
  const tenant = ctx.store.transaction(() => {
    const current = requireTenant(ctx, name);
    requirePhase(current, "activated", "retire");

    const previous = ctx.store.listCas(current.trustDomain, ["previous"]);
    let stillValid = 0;
    let latest: Date | null = null;
    for (const ca of previous) {
      for (const svid of ctx.store.unexpiredSvidsOfCa(ca.id, now)) {
        // A revoked SVID no longer validates anywhere, so it does not hold the old CA in the bundle.
        if (isRevoked(ctx, { spiffeId: svid.spiffeId, serial: svid.serial, trustDomain: svid.trustDomain, tenant: svid.tenant })) continue;
        stillValid += 1;
        if (latest === null || svid.notAfter > latest) latest = svid.notAfter;
      }
    }
    if (stillValid > 0 && !force) {
      throw failedPrecondition(
        CaErrorCode.rolloverPreviousStillValid,
        `the previous CA of tenant "${name}" signed ${stillValid} SVIDs that are valid until ${latest?.toISOString()}; retry after then, or set force to invalidate them now`,
      );
    }

    for (const ca of previous) {
      ctx.store.setCaState(ca.id, "retired");
      ctx.signers.delete(ca.id);
    }
    ctx.store.setTenantRolloverPhase(name, "none");
    markBundleChanged(ctx, current.trustDomain);

    ctx.logger.info("CA rollover retired", {
      [LogField.callerSpiffeId]: callerSpiffeId,
      [LogField.tenant]: name,
      retired_ca_ids: previous.map((ca) => ca.id).join(","),
      forced: force,
      still_valid_svids: stillValid,
    });
    return requireTenant(ctx, name);
  });
  ctx.onTrustChange?.();
  return tenant;
}
