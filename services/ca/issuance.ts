import { createHash } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { EwiiError } from "../core/errors.js";
import { LogField } from "../core/log.js";
import { issueX509Svid, NOT_BEFORE_BACKDATE_MS, parseCsr, SpiffeId } from "../core/identity/index.js";
import { activeCaOf, signingCaOf, type CaContext } from "./context.js";
import { CaErrorCode, failedPrecondition, unauthenticated } from "./errors.js";
import { certificateIssueTime, findRevocation } from "./revocations.js";
import { requireEnabled } from "./tenants.js";
import { consumeJoinToken, parseJoinToken } from "./tokens.js";
import type { IssuedBy, SvidRecord } from "./store.js";

/**
 * SVID issuance for Enroll, Renew and init. The CA decides the SPIFFE ID,
 * validity and extensions; it takes nothing from a CSR but its public key.
 */

export interface IssuedCredential {
  record: SvidRecord;
  /** Leaf first, stopping before the trust anchor. CAs are self-signed roots, so this is the leaf alone. */
  certChainDer: Buffer[];
}

/** Identity of an authenticated caller, as the peer verifier reports it. */
export interface RenewingPeer {
  spiffeId: string;
  serial: string;
}

function sha256(data: Uint8Array): Buffer {
  return createHash("sha256").update(data).digest();
}

/** DNS SANs of operator service SVIDs, so grpcurl and other host-name-checking tools can verify them. */
export const SERVICE_DNS_NAMES = ["localhost"] as const;

function isOperatorService(ctx: CaContext, spiffeId: SpiffeId): boolean {
  return spiffeId.trustDomain === ctx.operatorTrustDomain && spiffeId.hasPathPrefix("/service");
}

/**
 * Returns the notBefore of a new SVID: NOT_BEFORE_BACKDATE_MS before `now`,
 * cut to whole seconds as the certificate encodes it. Revocations are
 * judged by notBefore plus the backdate, which the cut places up to a
 * second before `now`. When a revocation of this identity falls inside
 * that second, notBefore moves to the next second, so that the new SVID
 * is not covered by a revocation made before it was issued.
 */
function notBeforeFor(ctx: CaContext, request: { spiffeId: SpiffeId; tenant: string | null }, now: Date): Date {
  const cutMs = Math.floor((now.getTime() - NOT_BEFORE_BACKDATE_MS) / 1000) * 1000;
  const covering = ctx.store.findCoveringRevocation({
    spiffeId: request.spiffeId.toString(),
    // No serial is empty, so serial revocations never match here.
    serial: "",
    tenant: request.tenant,
    issuedAt: certificateIssueTime(new Date(cutMs)),
  });
  // A revocation later than `now` (a clock set back) still covers the SVID, on the CA and on relays alike.
  const sameSecond = covering !== undefined && covering.revokedAt.getTime() <= now.getTime();
  return new Date(sameSecond ? cutMs + 1000 : cutMs);
}

/**
 * Signs an SVID for `spiffeId` with the active CA of its trust domain and
 * records it. Call inside a store transaction when a token or other state
 * changes with it. The lifetime is `ttlMs` (default: the configured SVID
 * lifetime), cut at the CA's own notAfter.
 */
export function issueSvid(
  ctx: CaContext,
  request: { spiffeId: SpiffeId; publicKeySpkiDer: Buffer; issuedBy: IssuedBy; tenant: string | null; ttlMs?: number },
): IssuedCredential {
  const ca = activeCaOf(ctx, request.spiffeId.trustDomain);
  const now = ctx.now();
  if (ca.notAfter.getTime() <= now.getTime() + NOT_BEFORE_BACKDATE_MS) {
    throw new EwiiError(CaErrorCode.caExpired, `the CA of ${request.spiffeId.trustDomain} expires at ${ca.notAfter.toISOString()}; roll it over before issuing`, {
      status: status.FAILED_PRECONDITION,
    });
  }
  const notBefore = notBeforeFor(ctx, request, now);
  const wanted = now.getTime() + (request.ttlMs ?? ctx.svidTtlMs);
  const notAfter = new Date(Math.min(wanted, ca.notAfter.getTime()));
  const issued = issueX509Svid({
    ca: signingCaOf(ctx, ca),
    subjectPublicKeySpkiDer: request.publicKeySpkiDer,
    spiffeId: request.spiffeId,
    notBefore,
    notAfter,
    dnsNames: isOperatorService(ctx, request.spiffeId) ? SERVICE_DNS_NAMES : [],
  });
  const record: SvidRecord = {
    serial: issued.serial,
    spiffeId: request.spiffeId.toString(),
    trustDomain: request.spiffeId.trustDomain,
    tenant: request.tenant,
    caId: ca.id,
    publicKeySha256: sha256(request.publicKeySpkiDer),
    issuedAt: now,
    notBefore,
    notAfter: new Date(Math.floor(notAfter.getTime() / 1000) * 1000),
    issuedBy: request.issuedBy,
  };
  ctx.store.insertSvid(record);
  return { record, certChainDer: [issued.certDer] };
}

/** Exchanges a join token and a CSR for a first SVID of the token's SPIFFE ID. */
export function enroll(ctx: CaContext, request: { joinToken: string; csrDer: Buffer }): IssuedCredential & { tenant: string } {
  const parsed = parseJoinToken(request.joinToken);
  // The CSR is checked before the token is consumed, so a bad CSR does not burn the token.
  const { publicKeySpkiDer } = parseCsr(request.csrDer);
  try {
    const issued = ctx.store.transaction(() => {
      const token = consumeJoinToken(ctx, parsed);
      const credential = issueSvid(ctx, { spiffeId: SpiffeId.parse(token.spiffeId), publicKeySpkiDer, issuedBy: "enroll", tenant: token.tenant });
      return { ...credential, tenant: token.tenant, tokenId: token.id };
    });
    ctx.logger.info("SVID enrolled", {
      [LogField.tenant]: issued.tenant,
      [LogField.spiffeId]: issued.record.spiffeId,
      [LogField.serial]: issued.record.serial,
      token_id: issued.tokenId,
      not_after: issued.record.notAfter.toISOString(),
    });
    return { record: issued.record, certChainDer: issued.certChainDer, tenant: issued.tenant };
  } finally {
    parsed.secret.fill(0);
  }
}

/**
 * Issues a new SVID for the caller's own SPIFFE ID over a new key. The
 * caller's current certificate must be one this CA issued, unexpired and
 * unrevoked, and its tenant must be enabled.
 */
export function renew(ctx: CaContext, peer: RenewingPeer, csrDer: Buffer): IssuedCredential {
  const current = ctx.store.getSvid(peer.serial);
  if (current === undefined || current.spiffeId !== peer.spiffeId) {
    throw unauthenticated(CaErrorCode.renewUnknownSvid, `the certificate with serial ${peer.serial} was not issued by this CA for ${peer.spiffeId}; enroll with a join token`);
  }
  const now = ctx.now();
  if (current.notAfter.getTime() <= now.getTime()) {
    throw unauthenticated(CaErrorCode.renewUnknownSvid, `the SVID with serial ${peer.serial} expired at ${current.notAfter.toISOString()}; enroll again with a join token`);
  }
  const revocation = findRevocation(ctx, { spiffeId: current.spiffeId, serial: current.serial, trustDomain: current.trustDomain, tenant: current.tenant });
  if (revocation !== undefined) {
    throw unauthenticated(CaErrorCode.svidRevoked, `the SVID with serial ${peer.serial} for ${peer.spiffeId} is revoked (revocation ${revocation.sequence}); it cannot be renewed`);
  }
  if (current.tenant !== null) {
    const tenant = ctx.store.getTenant(current.tenant);
    if (tenant === undefined) throw failedPrecondition(CaErrorCode.tenantNotFound, `tenant "${current.tenant}" no longer exists`);
    requireEnabled(tenant);
  }

  const { publicKeySpkiDer } = parseCsr(csrDer);
  if (sha256(publicKeySpkiDer).equals(current.publicKeySha256)) {
    throw new EwiiError(CaErrorCode.renewSameKey, "the CSR uses the key of the current SVID; generate a new key pair for every renewal", {
      status: status.INVALID_ARGUMENT,
    });
  }
  const issued = ctx.store.transaction(() =>
    issueSvid(ctx, { spiffeId: SpiffeId.parse(current.spiffeId), publicKeySpkiDer, issuedBy: "renew", tenant: current.tenant }),
  );
  ctx.logger.info("SVID renewed", {
    [LogField.tenant]: current.tenant ?? "",
    [LogField.spiffeId]: issued.record.spiffeId,
    [LogField.serial]: issued.record.serial,
    previous_serial: current.serial,
    not_after: issued.record.notAfter.toISOString(),
  });
  return issued;
}
