import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { status } from "@grpc/grpc-js";
import Database from "better-sqlite3";
import { EwiiError } from "../core/errors.js";
import { compilePolicy, type CompiledPolicy } from "./compile.js";
import { canonicalJson, documentSha256, parsePolicy, parsePolicyJson, type PolicyDocument } from "./document.js";

/** One stored policy version. */
export interface PolicyVersionRecord {
  version: number;
  /** The validated document in canonical JSON. */
  documentJson: string;
  documentSha256: string;
  appliedAt: Date;
  /** SPIFFE ID of the admin who applied it. */
  appliedBy: string;
  /** File name the document came from, as the admin's tool reported it. */
  sourceName: string;
}

/** Schema version in SQLite's `user_version`; bump it with a migration when the table changes. */
const SCHEMA_VERSION = 1;

interface VersionRow {
  version: number;
  document_json: string;
  document_sha256: string;
  applied_at_ms: number;
  applied_by: string;
  source_name: string;
}

/**
 * Versioned policy store on SQLite. Every applied document is kept with the
 * time and the admin who applied it; the current policy is the highest
 * version. Versions start at 1 and increase by one.
 */
export class PolicyStore {
  private readonly db: Database.Database;
  private readonly now: () => Date;

  private constructor(db: Database.Database, now: () => Date) {
    this.db = db;
    this.now = now;
  }

  /** Opens (and creates if needed) the store at `path`, a SQLite file. */
  static open(path: string, options: { now?: () => Date } = {}): PolicyStore {
    mkdirSync(dirname(path), { recursive: true });
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (err: unknown) {
      throw new EwiiError("ERR_POLICY_STORE_UNAVAILABLE", `cannot open the policy store ${path}: ${err instanceof Error ? err.message : String(err)}; check the data directory and its permissions`, {
        status: status.UNAVAILABLE,
        cause: err,
      });
    }
    db.pragma("journal_mode = WAL");
    // FULL syncs the WAL on every commit, so an acknowledged apply survives a power loss.
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 5000");
    const userVersion = db.pragma("user_version", { simple: true }) as number;
    if (userVersion > SCHEMA_VERSION) {
      db.close();
      throw new EwiiError("ERR_POLICY_STORE_UNAVAILABLE", `the policy store ${path} has schema version ${userVersion}, newer than this build's ${SCHEMA_VERSION}; run a newer ewii`, { status: status.FAILED_PRECONDITION });
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS policy_versions (
        version INTEGER PRIMARY KEY,
        document_json TEXT NOT NULL,
        document_sha256 TEXT NOT NULL,
        applied_at_ms INTEGER NOT NULL,
        applied_by TEXT NOT NULL,
        source_name TEXT NOT NULL
      ) STRICT;
    `);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return new PolicyStore(db, options.now ?? (() => new Date()));
  }

  /**
   * Validates a YAML document fully, then stores it as the next version in
   * one transaction. A document that fails validation throws
   * ERR_POLICY_INVALID and leaves the store unchanged.
   */
  apply(yamlText: string, sourceName: string, appliedBy: string): { record: PolicyVersionRecord; policy: CompiledPolicy } {
    return this.applyDocument(parsePolicy(yamlText, sourceName), sourceName, appliedBy);
  }

  /** Stores an already validated document as the next version; see `apply`. */
  applyDocument(document: PolicyDocument, sourceName: string, appliedBy: string): { record: PolicyVersionRecord; policy: CompiledPolicy } {
    // Compiling before the transaction catches anything validation missed
    // while nothing is written yet. The version is fixed up after insert.
    compilePolicy(document, 1);
    const documentJson = canonicalJson(document);
    const sha256 = documentSha256(document);
    const appliedAt = this.now();

    const insert = this.db.transaction((): number => {
      const row = this.db.prepare("SELECT MAX(version) AS version FROM policy_versions").get() as { version: number | null };
      const version = (row.version ?? 0) + 1;
      this.db
        .prepare("INSERT INTO policy_versions (version, document_json, document_sha256, applied_at_ms, applied_by, source_name) VALUES (?, ?, ?, ?, ?, ?)")
        .run(version, documentJson, sha256, appliedAt.getTime(), appliedBy, sourceName);
      return version;
    });
    // IMMEDIATE takes the write lock before reading MAX(version), so two
    // processes sharing the file cannot pick the same version.
    const version = insert.immediate();
    const record: PolicyVersionRecord = { version, documentJson, documentSha256: sha256, appliedAt, appliedBy, sourceName };
    return { record, policy: compilePolicy(document, version) };
  }

  /** Returns the highest version, or undefined before the first apply. */
  current(): PolicyVersionRecord | undefined {
    const row = this.db.prepare("SELECT * FROM policy_versions ORDER BY version DESC LIMIT 1").get() as VersionRow | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  /** Returns one version, or undefined when it does not exist. */
  get(version: number): PolicyVersionRecord | undefined {
    const row = this.db.prepare("SELECT * FROM policy_versions WHERE version = ?").get(version) as VersionRow | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  /** Returns every version, oldest first. */
  list(): PolicyVersionRecord[] {
    return (this.db.prepare("SELECT * FROM policy_versions ORDER BY version").all() as VersionRow[]).map(toRecord);
  }

  /** Compiles the current version, or returns undefined before the first apply. */
  currentPolicy(): CompiledPolicy | undefined {
    const record = this.current();
    if (record === undefined) return undefined;
    return compilePolicy(parsePolicyJson(record.documentJson, `policy version ${record.version}`), record.version);
  }

  close(): void {
    this.db.close();
  }
}

function toRecord(row: VersionRow): PolicyVersionRecord {
  return {
    version: row.version,
    documentJson: row.document_json,
    documentSha256: row.document_sha256,
    appliedAt: new Date(row.applied_at_ms),
    appliedBy: row.applied_by,
    sourceName: row.source_name,
  };
}
