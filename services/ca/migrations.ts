import type Database from "better-sqlite3";
import { EwiiError } from "../core/errors.js";
import { CaErrorCode } from "./errors.js";

/**
 * Numbered schema migrations of the CA store. Migration N moves the schema
 * from version N-1 to N. Append new migrations; never edit one that has
 * shipped. Times are integer milliseconds since the Unix epoch.
 */
const MIGRATIONS: readonly string[] = [
  // 1: initial schema.
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
  );

  CREATE TABLE tenants (
    name           TEXT PRIMARY KEY,
    trust_domain   TEXT NOT NULL UNIQUE,
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at     INTEGER NOT NULL,
    rollover_phase TEXT NOT NULL CHECK (rollover_phase IN ('none', 'prepared', 'activated'))
  );

  CREATE TABLE cas (
    id             TEXT PRIMARY KEY,
    trust_domain   TEXT NOT NULL,
    tenant         TEXT REFERENCES tenants(name),
    cert_der       BLOB NOT NULL,
    key_ciphertext BLOB NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('active', 'prepared', 'previous', 'retired')),
    not_before     INTEGER NOT NULL,
    not_after      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
  );
  CREATE INDEX cas_by_trust_domain ON cas (trust_domain, state);

  CREATE TABLE bundle_sequences (
    trust_domain TEXT PRIMARY KEY,
    sequence     INTEGER NOT NULL
  );

  CREATE TABLE join_tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 BLOB NOT NULL,
    tenant        TEXT NOT NULL REFERENCES tenants(name),
    spiffe_id     TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
  );

  CREATE TABLE svids (
    serial            TEXT PRIMARY KEY,
    spiffe_id         TEXT NOT NULL,
    trust_domain      TEXT NOT NULL,
    tenant            TEXT REFERENCES tenants(name),
    ca_id             TEXT NOT NULL REFERENCES cas(id),
    public_key_sha256 BLOB NOT NULL,
    issued_at         INTEGER NOT NULL,
    not_before        INTEGER NOT NULL,
    not_after         INTEGER NOT NULL,
    issued_by         TEXT NOT NULL CHECK (issued_by IN ('init', 'enroll', 'renew'))
  );
  CREATE INDEX svids_by_spiffe_id ON svids (spiffe_id);
  CREATE INDEX svids_by_tenant ON svids (tenant, issued_at);
  CREATE INDEX svids_by_ca ON svids (ca_id, not_after);

  -- AUTOINCREMENT: a sequence number is never reused, even after a delete.
  CREATE TABLE revocations (
    sequence     INTEGER PRIMARY KEY AUTOINCREMENT,
    target_kind  TEXT NOT NULL CHECK (target_kind IN ('spiffe_id', 'serial', 'path_prefix', 'tenant')),
    target_value TEXT NOT NULL,
    trust_domain TEXT NOT NULL,
    reason       TEXT NOT NULL,
    revoked_by   TEXT NOT NULL,
    revoked_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
  );
  CREATE INDEX revocations_by_target ON revocations (target_kind, target_value);
  `,
  // 2: a revocation of the token's SPIFFE ID (directly, by prefix or by
  // tenant) invalidates an unused join token; this is that revocation.
  `
  ALTER TABLE join_tokens ADD COLUMN revoked_sequence INTEGER REFERENCES revocations(sequence);
  `,
];

/** Schema version this build writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the database to SCHEMA_VERSION, each step in its own transaction.
 * Rejects a database written by a newer build.
 */
export function migrate(db: Database.Database): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = db.prepare("SELECT version FROM schema_version").get() as { version: number } | undefined;
  let version = row?.version ?? 0;
  if (row === undefined) db.prepare("INSERT INTO schema_version (version) VALUES (0)").run();

  if (version > SCHEMA_VERSION) {
    throw new EwiiError(
      CaErrorCode.storeCorrupt,
      `the CA store has schema version ${version}, newer than version ${SCHEMA_VERSION} that this build supports; run a newer ewii`,
    );
  }

  const setVersion = db.prepare("UPDATE schema_version SET version = ?");
  while (version < SCHEMA_VERSION) {
    const next = version + 1;
    db.transaction(() => {
      db.exec(MIGRATIONS[next - 1]);
      setVersion.run(next);
    }).immediate();
    version = next;
  }
}
