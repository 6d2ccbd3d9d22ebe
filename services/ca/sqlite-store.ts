import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { EwiiError } from "../core/errors.js";
import { CaErrorCode } from "./errors.js";
import { migrate } from "./migrations.js";
import type {
  CaRecord,
  CaState,
  CaStore,
  IssuedBy,
  JoinTokenRecord,
  NewRevocation,
  RevocationRecord,
  RevocationSubject,
  RevocationTargetKind,
  RevocationTargetRecord,
  RolloverPhase,
  SvidRecord,
  TenantRecord,
} from "./store.js";

/** Milliseconds SQLite waits for a lock held by another connection before failing. */
const BUSY_TIMEOUT_MS = 5000;

interface CaRow {
  id: string;
  trust_domain: string;
  tenant: string | null;
  cert_der: Buffer;
  key_ciphertext: Buffer;
  state: CaState;
  not_before: number;
  not_after: number;
  created_at: number;
}

interface TenantRow {
  name: string;
  trust_domain: string;
  enabled: number;
  created_at: number;
  rollover_phase: RolloverPhase;
}

interface TokenRow {
  id: string;
  secret_sha256: Buffer;
  tenant: string;
  spiffe_id: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_sequence: number | null;
}

interface SvidRow {
  serial: string;
  spiffe_id: string;
  trust_domain: string;
  tenant: string | null;
  ca_id: string;
  public_key_sha256: Buffer;
  issued_at: number;
  not_before: number;
  not_after: number;
  issued_by: IssuedBy;
}

interface RevocationRow {
  sequence: number;
  target_kind: RevocationTargetKind;
  target_value: string;
  trust_domain: string;
  reason: string;
  revoked_by: string;
  revoked_at: number;
  expires_at: number;
}

const toCa = (row: CaRow): CaRecord => ({
  id: row.id,
  trustDomain: row.trust_domain,
  tenant: row.tenant,
  certDer: row.cert_der,
  keyCiphertext: row.key_ciphertext,
  state: row.state,
  notBefore: new Date(row.not_before),
  notAfter: new Date(row.not_after),
  createdAt: new Date(row.created_at),
});

const toTenant = (row: TenantRow): TenantRecord => ({
  name: row.name,
  trustDomain: row.trust_domain,
  enabled: row.enabled === 1,
  createdAt: new Date(row.created_at),
  rolloverPhase: row.rollover_phase,
});

const toToken = (row: TokenRow): JoinTokenRecord => ({
  id: row.id,
  secretSha256: row.secret_sha256,
  tenant: row.tenant,
  spiffeId: row.spiffe_id,
  createdBy: row.created_by,
  createdAt: new Date(row.created_at),
  expiresAt: new Date(row.expires_at),
  usedAt: row.used_at === null ? null : new Date(row.used_at),
  revokedSequence: row.revoked_sequence,
});

const toSvid = (row: SvidRow): SvidRecord => ({
  serial: row.serial,
  spiffeId: row.spiffe_id,
  trustDomain: row.trust_domain,
  tenant: row.tenant,
  caId: row.ca_id,
  publicKeySha256: row.public_key_sha256,
  issuedAt: new Date(row.issued_at),
  notBefore: new Date(row.not_before),
  notAfter: new Date(row.not_after),
  issuedBy: row.issued_by,
});

const toRevocation = (row: RevocationRow): RevocationRecord => ({
  sequence: row.sequence,
  target: { kind: row.target_kind, value: row.target_value },
  trustDomain: row.trust_domain,
  reason: row.reason,
  revokedBy: row.revoked_by,
  revokedAt: new Date(row.revoked_at),
  expiresAt: new Date(row.expires_at),
});

/**
 * SQL condition true when the SPIFFE ID `:spiffe_id` lies under the path
 * prefix `target_value` on a segment boundary. Prefixes are stored without
 * a trailing slash, so "spiffe://td/a" covers "spiffe://td/a" and
 * "spiffe://td/a/b" but not "spiffe://td/ab".
 */
const PREFIX_MATCH_SQL =
  "(:spiffe_id = target_value OR substr(:spiffe_id, 1, length(target_value) + 1) = target_value || '/')";

/** Mode of a new CA store file, because it contains sealed CA keys and join token hashes. */
const STORE_FILE_MODE = 0o600;

/**
 * Opens (creating if needed) the CA store at `file` with WAL journaling and
 * synchronous=FULL, so a committed change survives power loss, and runs the
 * schema migrations.
 */
export function openSqliteCaStore(file: string): CaStore {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  let db: Database.Database;
  try {
    // Created 0600 before SQLite opens it: SQLite gives the -wal and -shm
    // files the mode of the database file. An existing file keeps its mode.
    closeSync(openSync(file, "a", STORE_FILE_MODE));
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("foreign_keys = ON");
    migrate(db);
  } catch (err) {
    if (err instanceof EwiiError) throw err;
    throw new EwiiError(CaErrorCode.storeCorrupt, `cannot open the CA store ${file}: ${(err as Error).message}; check the file and its permissions`, {
      cause: err,
    });
  }
  return new SqliteCaStore(db);
}

class SqliteCaStore implements CaStore {
  readonly #db: Database.Database;
  readonly #stmt: ReturnType<typeof prepareStatements>;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#stmt = prepareStatements(db);
  }

  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  getMeta(key: string): Buffer | undefined {
    const row = this.#stmt.getMeta.get(key) as { value: Buffer } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: Buffer): void {
    this.#stmt.setMeta.run(key, value);
  }

  insertCa(ca: CaRecord): void {
    this.#stmt.insertCa.run({
      id: ca.id,
      trust_domain: ca.trustDomain,
      tenant: ca.tenant,
      cert_der: ca.certDer,
      key_ciphertext: ca.keyCiphertext,
      state: ca.state,
      not_before: ca.notBefore.getTime(),
      not_after: ca.notAfter.getTime(),
      created_at: ca.createdAt.getTime(),
    });
  }

  getCa(id: string): CaRecord | undefined {
    const row = this.#stmt.getCa.get(id) as CaRow | undefined;
    return row === undefined ? undefined : toCa(row);
  }

  listCas(trustDomain: string, states: readonly CaState[]): CaRecord[] {
    const rows = this.#stmt.listCas.all(trustDomain) as CaRow[];
    return rows.filter((row) => states.includes(row.state)).map(toCa);
  }

  setCaState(id: string, state: CaState): void {
    this.#stmt.setCaState.run(state, id);
  }

  insertTenant(tenant: TenantRecord): void {
    this.#stmt.insertTenant.run({
      name: tenant.name,
      trust_domain: tenant.trustDomain,
      enabled: tenant.enabled ? 1 : 0,
      created_at: tenant.createdAt.getTime(),
      rollover_phase: tenant.rolloverPhase,
    });
  }

  getTenant(name: string): TenantRecord | undefined {
    const row = this.#stmt.getTenant.get(name) as TenantRow | undefined;
    return row === undefined ? undefined : toTenant(row);
  }

  getTenantByTrustDomain(trustDomain: string): TenantRecord | undefined {
    const row = this.#stmt.getTenantByTrustDomain.get(trustDomain) as TenantRow | undefined;
    return row === undefined ? undefined : toTenant(row);
  }

  listTenants(): TenantRecord[] {
    return (this.#stmt.listTenants.all() as TenantRow[]).map(toTenant);
  }

  setTenantEnabled(name: string, enabled: boolean): void {
    this.#stmt.setTenantEnabled.run(enabled ? 1 : 0, name);
  }

  setTenantRolloverPhase(name: string, phase: RolloverPhase): void {
    this.#stmt.setTenantRolloverPhase.run(phase, name);
  }

  getBundleSequence(trustDomain: string): number {
    const row = this.#stmt.getBundleSequence.get(trustDomain) as { sequence: number } | undefined;
    return row?.sequence ?? 0;
  }

  incrementBundleSequence(trustDomain: string): number {
    const row = this.#stmt.incrementBundleSequence.get(trustDomain) as { sequence: number };
    return row.sequence;
  }

  insertJoinToken(token: JoinTokenRecord): void {
    this.#stmt.insertToken.run({
      id: token.id,
      secret_sha256: token.secretSha256,
      tenant: token.tenant,
      spiffe_id: token.spiffeId,
      created_by: token.createdBy,
      created_at: token.createdAt.getTime(),
      expires_at: token.expiresAt.getTime(),
      used_at: token.usedAt?.getTime() ?? null,
    });
  }

  getJoinToken(id: string): JoinTokenRecord | undefined {
    const row = this.#stmt.getToken.get(id) as TokenRow | undefined;
    return row === undefined ? undefined : toToken(row);
  }

  markJoinTokenUsed(id: string, usedAt: Date): boolean {
    return this.#stmt.markTokenUsed.run(usedAt.getTime(), id).changes === 1;
  }

  revokeUnusedJoinTokens(revocation: RevocationRecord): number {
    const statement = {
      spiffe_id: this.#stmt.revokeTokensBySpiffeId,
      path_prefix: this.#stmt.revokeTokensByPrefix,
      tenant: this.#stmt.revokeTokensByTenant,
      serial: undefined,
    }[revocation.target.kind];
    if (statement === undefined) return 0;
    return statement.run({ sequence: revocation.sequence, value: revocation.target.value }).changes;
  }

  insertSvid(svid: SvidRecord): void {
    this.#stmt.insertSvid.run({
      serial: svid.serial,
      spiffe_id: svid.spiffeId,
      trust_domain: svid.trustDomain,
      tenant: svid.tenant,
      ca_id: svid.caId,
      public_key_sha256: svid.publicKeySha256,
      issued_at: svid.issuedAt.getTime(),
      not_before: svid.notBefore.getTime(),
      not_after: svid.notAfter.getTime(),
      issued_by: svid.issuedBy,
    });
  }

  getSvid(serial: string): SvidRecord | undefined {
    const row = this.#stmt.getSvid.get(serial) as SvidRow | undefined;
    return row === undefined ? undefined : toSvid(row);
  }

  listSvids(filter: { tenant?: string | null; validAt?: Date }): SvidRecord[] {
    const rows = this.#stmt.listSvids.all({
      filter_tenant: filter.tenant === undefined ? 0 : 1,
      tenant: filter.tenant ?? null,
      valid_at: filter.validAt?.getTime() ?? null,
    }) as SvidRow[];
    return rows.map(toSvid);
  }

  unexpiredSvidsOfCa(caId: string, now: Date): SvidRecord[] {
    return (this.#stmt.unexpiredSvidsOfCa.all(caId, now.getTime()) as SvidRow[]).map(toSvid);
  }

  latestNotAfterCovered(target: RevocationTargetRecord, revokedAt: Date): Date | null {
    const statement = {
      spiffe_id: this.#stmt.latestBySpiffeId,
      serial: this.#stmt.latestBySerial,
      path_prefix: this.#stmt.latestByPrefix,
      tenant: this.#stmt.latestByTenant,
    }[target.kind];
    const row = statement.get({ value: target.value, revoked_at: revokedAt.getTime() }) as { latest: number | null };
    return row.latest === null ? null : new Date(row.latest);
  }

  insertRevocation(revocation: NewRevocation): RevocationRecord {
    const result = this.#stmt.insertRevocation.run({
      target_kind: revocation.target.kind,
      target_value: revocation.target.value,
      trust_domain: revocation.trustDomain,
      reason: revocation.reason,
      revoked_by: revocation.revokedBy,
      revoked_at: revocation.revokedAt.getTime(),
      expires_at: revocation.expiresAt.getTime(),
    });
    return { ...revocation, sequence: Number(result.lastInsertRowid) };
  }

  listRevocations(sinceSequence: number, limit: number): RevocationRecord[] {
    return (this.#stmt.listRevocations.all(sinceSequence, limit) as RevocationRow[]).map(toRevocation);
  }

  latestRevocationSequence(): number {
    const row = this.#stmt.latestRevocationSequence.get() as { latest: number | null };
    return row.latest ?? 0;
  }

  findCoveringRevocation(subject: RevocationSubject): RevocationRecord | undefined {
    const row = this.#stmt.findCoveringRevocation.get({
      spiffe_id: subject.spiffeId,
      serial: subject.serial,
      tenant: subject.tenant,
      issued_at: subject.issuedAt.getTime(),
    }) as RevocationRow | undefined;
    return row === undefined ? undefined : toRevocation(row);
  }
}

function prepareStatements(db: Database.Database) {
  return {
    getMeta: db.prepare("SELECT value FROM meta WHERE key = ?"),
    setMeta: db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),

    insertCa: db.prepare(
      `INSERT INTO cas (id, trust_domain, tenant, cert_der, key_ciphertext, state, not_before, not_after, created_at)
       VALUES (:id, :trust_domain, :tenant, :cert_der, :key_ciphertext, :state, :not_before, :not_after, :created_at)`,
    ),
    getCa: db.prepare("SELECT * FROM cas WHERE id = ?"),
    listCas: db.prepare("SELECT * FROM cas WHERE trust_domain = ? ORDER BY created_at DESC, rowid DESC"),
    setCaState: db.prepare("UPDATE cas SET state = ? WHERE id = ?"),

    insertTenant: db.prepare(
      `INSERT INTO tenants (name, trust_domain, enabled, created_at, rollover_phase)
       VALUES (:name, :trust_domain, :enabled, :created_at, :rollover_phase)`,
    ),
    getTenant: db.prepare("SELECT * FROM tenants WHERE name = ?"),
    getTenantByTrustDomain: db.prepare("SELECT * FROM tenants WHERE trust_domain = ?"),
    listTenants: db.prepare("SELECT * FROM tenants ORDER BY name"),
    setTenantEnabled: db.prepare("UPDATE tenants SET enabled = ? WHERE name = ?"),
    setTenantRolloverPhase: db.prepare("UPDATE tenants SET rollover_phase = ? WHERE name = ?"),

    getBundleSequence: db.prepare("SELECT sequence FROM bundle_sequences WHERE trust_domain = ?"),
    incrementBundleSequence: db.prepare(
      `INSERT INTO bundle_sequences (trust_domain, sequence) VALUES (?, 1)
       ON CONFLICT (trust_domain) DO UPDATE SET sequence = sequence + 1 RETURNING sequence`,
    ),

    insertToken: db.prepare(
      `INSERT INTO join_tokens (id, secret_sha256, tenant, spiffe_id, created_by, created_at, expires_at, used_at)
       VALUES (:id, :secret_sha256, :tenant, :spiffe_id, :created_by, :created_at, :expires_at, :used_at)`,
    ),
    getToken: db.prepare("SELECT * FROM join_tokens WHERE id = ?"),
    markTokenUsed: db.prepare("UPDATE join_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_sequence IS NULL"),
    revokeTokensBySpiffeId: db.prepare(
      "UPDATE join_tokens SET revoked_sequence = :sequence WHERE used_at IS NULL AND revoked_sequence IS NULL AND spiffe_id = :value",
    ),
    revokeTokensByPrefix: db.prepare(
      `UPDATE join_tokens SET revoked_sequence = :sequence
       WHERE used_at IS NULL AND revoked_sequence IS NULL
         AND (spiffe_id = :value OR substr(spiffe_id, 1, length(:value) + 1) = :value || '/')`,
    ),
    revokeTokensByTenant: db.prepare(
      "UPDATE join_tokens SET revoked_sequence = :sequence WHERE used_at IS NULL AND revoked_sequence IS NULL AND tenant = :value",
    ),

    insertSvid: db.prepare(
      `INSERT INTO svids (serial, spiffe_id, trust_domain, tenant, ca_id, public_key_sha256, issued_at, not_before, not_after, issued_by)
       VALUES (:serial, :spiffe_id, :trust_domain, :tenant, :ca_id, :public_key_sha256, :issued_at, :not_before, :not_after, :issued_by)`,
    ),
    getSvid: db.prepare("SELECT * FROM svids WHERE serial = ?"),
    listSvids: db.prepare(
      `SELECT * FROM svids
       WHERE (:filter_tenant = 0 OR tenant IS :tenant)
         AND (:valid_at IS NULL OR not_after > :valid_at)
       ORDER BY issued_at DESC, rowid DESC`,
    ),
    unexpiredSvidsOfCa: db.prepare("SELECT * FROM svids WHERE ca_id = ? AND not_after > ?"),
    latestBySpiffeId: db.prepare("SELECT max(not_after) AS latest FROM svids WHERE spiffe_id = :value AND issued_at <= :revoked_at"),
    latestBySerial: db.prepare("SELECT max(not_after) AS latest FROM svids WHERE serial = :value AND :revoked_at IS NOT NULL"),
    latestByPrefix: db.prepare(
      `SELECT max(not_after) AS latest FROM svids
       WHERE (spiffe_id = :value OR substr(spiffe_id, 1, length(:value) + 1) = :value || '/') AND issued_at <= :revoked_at`,
    ),
    latestByTenant: db.prepare("SELECT max(not_after) AS latest FROM svids WHERE tenant = :value AND issued_at <= :revoked_at"),

    insertRevocation: db.prepare(
      `INSERT INTO revocations (target_kind, target_value, trust_domain, reason, revoked_by, revoked_at, expires_at)
       VALUES (:target_kind, :target_value, :trust_domain, :reason, :revoked_by, :revoked_at, :expires_at)`,
    ),
    listRevocations: db.prepare("SELECT * FROM revocations WHERE sequence > ? ORDER BY sequence LIMIT ?"),
    latestRevocationSequence: db.prepare("SELECT max(sequence) AS latest FROM revocations"),
    findCoveringRevocation: db.prepare(
      `SELECT * FROM revocations
       WHERE (target_kind = 'serial' AND target_value = :serial)
          OR (revoked_at >= :issued_at AND (
                (target_kind = 'spiffe_id' AND target_value = :spiffe_id)
             OR (target_kind = 'tenant' AND target_value = :tenant)
             OR (target_kind = 'path_prefix' AND ${PREFIX_MATCH_SQL})))
       ORDER BY sequence LIMIT 1`,
    ),
  };
}
