/**
 * The persistence contract of the CA. Domain modules depend on this
 * interface only; `openSqliteCaStore` in sqlite-store.ts implements it.
 * Times are Date values; the SQLite implementation stores milliseconds.
 */

export type CaState = "active" | "prepared" | "previous" | "retired";
export type RolloverPhase = "none" | "prepared" | "activated";
export type IssuedBy = "init" | "enroll" | "renew";
export type RevocationTargetKind = "spiffe_id" | "serial" | "path_prefix" | "tenant";

export interface CaRecord {
  id: string;
  trustDomain: string;
  /** Tenant name, or null for the operator root CA. */
  tenant: string | null;
  certDer: Buffer;
  /** PKCS#8 private key sealed by the KEK (see kek.ts); never plaintext. */
  keyCiphertext: Buffer;
  state: CaState;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
}

export interface TenantRecord {
  name: string;
  trustDomain: string;
  enabled: boolean;
  createdAt: Date;
  rolloverPhase: RolloverPhase;
}

export interface JoinTokenRecord {
  id: string;
  /** SHA-256 of the token secret; the secret itself is never stored. */
  secretSha256: Buffer;
  tenant: string;
  spiffeId: string;
  createdBy: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  /** Sequence of the revocation that invalidated the unused token, or null. */
  revokedSequence: number | null;
}

export interface SvidRecord {
  /** Lowercase hexadecimal. */
  serial: string;
  spiffeId: string;
  trustDomain: string;
  tenant: string | null;
  caId: string;
  /** SHA-256 of the subject public key (SPKI DER), to detect key reuse on renewal. */
  publicKeySha256: Buffer;
  issuedAt: Date;
  notBefore: Date;
  notAfter: Date;
  issuedBy: IssuedBy;
}

export interface RevocationTargetRecord {
  kind: RevocationTargetKind;
  /** SPIFFE ID, serial, normalized path prefix (no trailing slash) or tenant name. */
  value: string;
}

export interface RevocationRecord {
  sequence: number;
  target: RevocationTargetRecord;
  trustDomain: string;
  reason: string;
  revokedBy: string;
  revokedAt: Date;
  expiresAt: Date;
}

export type NewRevocation = Omit<RevocationRecord, "sequence">;

/** The facts of one certificate that a revocation can match. */
export interface RevocationSubject {
  spiffeId: string;
  serial: string;
  tenant: string | null;
  /** Issue time as the certificate shows it (notBefore plus the backdate); revocations cover only issuance at or before them, except by serial. */
  issuedAt: Date;
}

export interface CaStore {
  /** Runs `fn` in one immediate (write-locking) transaction; `fn` must be synchronous. */
  transaction<T>(fn: () => T): T;
  close(): void;

  getMeta(key: string): Buffer | undefined;
  setMeta(key: string, value: Buffer): void;

  insertCa(ca: CaRecord): void;
  getCa(id: string): CaRecord | undefined;
  /** CAs of a trust domain in the given states, newest first. */
  listCas(trustDomain: string, states: readonly CaState[]): CaRecord[];
  setCaState(id: string, state: CaState): void;

  insertTenant(tenant: TenantRecord): void;
  getTenant(name: string): TenantRecord | undefined;
  getTenantByTrustDomain(trustDomain: string): TenantRecord | undefined;
  /** Every tenant, ordered by name. */
  listTenants(): TenantRecord[];
  setTenantEnabled(name: string, enabled: boolean): void;
  setTenantRolloverPhase(name: string, phase: RolloverPhase): void;

  getBundleSequence(trustDomain: string): number;
  /** Increments and returns the bundle sequence of a trust domain (1 on first change). */
  incrementBundleSequence(trustDomain: string): number;

  insertJoinToken(token: JoinTokenRecord): void;
  getJoinToken(id: string): JoinTokenRecord | undefined;
  /** Sets used_at if the token is still unused; returns false if another redemption won. */
  markJoinTokenUsed(id: string, usedAt: Date): boolean;
  /**
   * Marks every unused, not yet revoked join token whose SPIFFE ID the
   * revocation covers as revoked by it; returns how many. Serial
   * revocations cover no token.
   */
  revokeUnusedJoinTokens(revocation: RevocationRecord): number;

  insertSvid(svid: SvidRecord): void;
  getSvid(serial: string): SvidRecord | undefined;
  /** SVIDs newest first, optionally of one tenant ("" for the operator) and still valid at `validAt`. */
  listSvids(filter: { tenant?: string | null; validAt?: Date }): SvidRecord[];
  /** SVIDs a CA signed whose validity has not ended at `now`, revoked or not. */
  unexpiredSvidsOfCa(caId: string, now: Date): SvidRecord[];
  /** Latest notAfter among the SVIDs a revocation target covers, or null if none. */
  latestNotAfterCovered(target: RevocationTargetRecord, revokedAt: Date): Date | null;

  insertRevocation(revocation: NewRevocation): RevocationRecord;
  /** Revocations with sequence > `sinceSequence`, in sequence order. */
  listRevocations(sinceSequence: number, limit: number): RevocationRecord[];
  latestRevocationSequence(): number;
  /** The first revocation that covers the subject, or undefined. */
  findCoveringRevocation(subject: RevocationSubject): RevocationRecord | undefined;
}
