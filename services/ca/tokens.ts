import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { EwiiError } from "../core/errors.js";
import { LogField } from "../core/log.js";
import { SpiffeId } from "../core/identity/index.js";
import type { CaContext } from "./context.js";
import { activeCaOf, MetaKey } from "./context.js";
import { CaErrorCode, invalidArgument } from "./errors.js";
import { requireEnabled, requireTenant } from "./tenants.js";
import type { JoinTokenRecord } from "./store.js";

/**
 * Join tokens: `ewii1.<id>.<secret>.<fingerprint>`, where the id is 12
 * random bytes and the secret 32 random bytes, both base64url, and the
 * fingerprint is the SHA-256 of the operator root CA certificate (DER) in
 * lowercase hex. The client checks the CA's TLS chain against the
 * fingerprint on first contact. The store keeps only SHA-256(secret).
 */

export const TOKEN_PREFIX = "ewii1";
export const DEFAULT_TOKEN_TTL_MS = 15 * 60 * 1000;
export const MAX_TOKEN_TTL_MS = 24 * 3600 * 1000;
const TOKEN_ID_BYTES = 12;
const TOKEN_SECRET_BYTES = 32;
const TOKEN_PATTERN = /^ewii1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})\.([0-9a-f]{64})$/;

export interface ParsedJoinToken {
  id: string;
  secret: Buffer;
  /** SHA-256 of the operator root CA certificate, lowercase hex. */
  trustAnchorSha256: string;
}

/** Splits a join token into its parts. Throws ERR_TOKEN_MALFORMED without quoting the token. */
export function parseJoinToken(token: string): ParsedJoinToken {
  const match = TOKEN_PATTERN.exec(token.trim());
  if (match === null) {
    throw new EwiiError(
      CaErrorCode.tokenMalformed,
      `join token is malformed (${token.length} characters): expected "${TOKEN_PREFIX}.<id>.<secret>.<64 hex fingerprint>" exactly as "ewii token create" printed it (CreateJoinToken returns it)`,
      { status: status.UNAUTHENTICATED },
    );
  }
  return { id: match[1], secret: Buffer.from(match[2], "base64url"), trustAnchorSha256: match[3] };
}

/** Returns the SHA-256 fingerprint (lowercase hex) of the operator root CA certificate. */
export function operatorRootFingerprint(ctx: CaContext): string {
  const rootId = ctx.store.getMeta(MetaKey.rootCaId)?.toString("utf8");
  const root = rootId === undefined ? activeCaOf(ctx, ctx.operatorTrustDomain) : ctx.store.getCa(rootId);
  if (root === undefined) throw new EwiiError(CaErrorCode.storeCorrupt, "the operator root CA is missing from the CA store; the store is damaged");
  return createHash("sha256").update(root.certDer).digest("hex");
}

/**
 * Checks the parts of a SPIFFE ID path that SpiffeId.fromParts cannot
 * report well: without a leading "/" it would join the path to the trust
 * domain and name a different, broken SPIFFE ID.
 */
function validateSpiffeIdPath(path: string): string {
  const hint = '(--path of "ewii token create"); give a path such as "/client/site-1"';
  if (path === "" || path === "/") throw invalidArgument(CaErrorCode.spiffeIdPathInvalid, `spiffe_id_path is empty ${hint}`);
  if (!path.startsWith("/")) {
    throw invalidArgument(CaErrorCode.spiffeIdPathInvalid, `spiffe_id_path "${path.slice(0, 200)}" must start with "/" ${hint}`);
  }
  return path;
}

export interface CreatedJoinToken {
  /** The whole token; returned once and never stored or logged. */
  token: string;
  spiffeId: string;
  expiresAt: Date;
}

/** Creates a single-use join token for `spiffe://<tenant trust domain><path>`. */
export function createJoinToken(
  ctx: CaContext,
  request: { tenant: string; spiffeIdPath: string; ttlSeconds: number; callerSpiffeId: string; defaultTtlMs?: number },
): CreatedJoinToken {
  const ttlMs = request.ttlSeconds === 0 ? (request.defaultTtlMs ?? DEFAULT_TOKEN_TTL_MS) : request.ttlSeconds * 1000;
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TOKEN_TTL_MS) {
    throw invalidArgument(CaErrorCode.tokenTtlInvalid, `ttl_seconds ${request.ttlSeconds} is out of range: use 1 to ${MAX_TOKEN_TTL_MS / 1000}, or 0 for the default`);
  }
  const tenant = requireTenant(ctx, request.tenant);
  requireEnabled(tenant);
  const spiffeId = SpiffeId.fromParts(tenant.trustDomain, validateSpiffeIdPath(request.spiffeIdPath));

  const id = randomBytes(TOKEN_ID_BYTES).toString("base64url");
  const secret = randomBytes(TOKEN_SECRET_BYTES);
  const now = ctx.now();
  const record: JoinTokenRecord = {
    id,
    secretSha256: createHash("sha256").update(secret).digest(),
    tenant: tenant.name,
    spiffeId: spiffeId.toString(),
    createdBy: request.callerSpiffeId,
    createdAt: now,
    expiresAt: new Date(now.getTime() + ttlMs),
    usedAt: null,
    revokedSequence: null,
  };
  ctx.store.insertJoinToken(record);
  const token = `${TOKEN_PREFIX}.${id}.${secret.toString("base64url")}.${operatorRootFingerprint(ctx)}`;
  secret.fill(0);
  ctx.logger.info("join token created", {
    [LogField.callerSpiffeId]: request.callerSpiffeId,
    [LogField.tenant]: tenant.name,
    [LogField.spiffeId]: record.spiffeId,
    token_id: id,
    expires_at: record.expiresAt.toISOString(),
  });
  return { token, spiffeId: record.spiffeId, expiresAt: record.expiresAt };
}

function unknownToken(detail: string): EwiiError {
  return new EwiiError(CaErrorCode.tokenUnknown, `join token is not known to this CA (${detail}); ask the operator for a new token`, {
    status: status.UNAUTHENTICATED,
  });
}

/**
 * Checks a join token and marks it used. Call inside the store transaction
 * that issues the SVID, so a failed issuance leaves the token unused and two
 * concurrent redemptions cannot both succeed. The secret is compared before
 * any state is reported, so a token id alone reveals nothing.
 */
export function consumeJoinToken(ctx: CaContext, parsed: ParsedJoinToken): JoinTokenRecord {
  const record = ctx.store.getJoinToken(parsed.id);
  const presented = createHash("sha256").update(parsed.secret).digest();
  // Compare against a dummy hash when the id is unknown, so both paths do the same work.
  const expected = record?.secretSha256 ?? Buffer.alloc(presented.length);
  const secretMatches = expected.length === presented.length && timingSafeEqual(expected, presented);
  if (record === undefined || !secretMatches) throw unknownToken("no token with this id and secret");

  if (parsed.trustAnchorSha256 !== operatorRootFingerprint(ctx)) throw unknownToken("its trust anchor fingerprint names another CA");
  const now = ctx.now();
  if (record.usedAt !== null) {
    throw new EwiiError(CaErrorCode.tokenUsed, `join token ${record.id} was already used at ${record.usedAt.toISOString()}; tokens are single use, ask for a new one`, {
      status: status.UNAUTHENTICATED,
    });
  }
  // Checked before the token's own revocation, because disabling a tenant also revokes its tokens.
  requireEnabled(requireTenant(ctx, record.tenant));
  if (record.revokedSequence !== null) {
    throw new EwiiError(
      CaErrorCode.tokenRevoked,
      `join token ${record.id} for ${record.spiffeId} was invalidated by revocation ${record.revokedSequence}; create a new token with "ewii token create" (CreateJoinToken) if the identity may enroll again`,
      { status: status.UNAUTHENTICATED },
    );
  }
  if (record.expiresAt.getTime() <= now.getTime()) {
    throw new EwiiError(CaErrorCode.tokenExpired, `join token ${record.id} expired at ${record.expiresAt.toISOString()}; ask for a new one`, {
      status: status.UNAUTHENTICATED,
    });
  }
  if (!ctx.store.markJoinTokenUsed(record.id, now)) {
    throw new EwiiError(CaErrorCode.tokenUsed, `join token ${record.id} was already used; tokens are single use, ask for a new one`, {
      status: status.UNAUTHENTICATED,
    });
  }
  return record;
}
