import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { EwiiError } from "../core/errors.js";
import { validateTrustDomain } from "../core/identity/index.js";
import { LogField, silentLogger, type Logger } from "../core/log.js";
import { markBundleChanged } from "./bundles.js";
import { DEFAULT_CA_VALIDITY_MS, DEFAULT_SVID_TTL_MS, MetaKey, newCaRecord, type CaContext } from "./context.js";
import { CREDENTIAL_DIR_MODE, issueOperatorCredential, writeCredentialFiles, type CredentialPaths, type OperatorIdentityKind } from "./credentials.js";
import { CaErrorCode } from "./errors.js";
import type { Kek } from "./kek.js";
import { noopRevocationPublisher, type RevocationPublisher } from "./revocation-publisher.js";
import { openSqliteCaStore } from "./sqlite-store.js";
import { newCaId, TENANT_NAME_PATTERN } from "./tenants.js";

/** File name of the CA store inside the data directory. */
export const CA_STORE_FILE = "ca.db";

export function caStorePath(dataDir: string): string {
  return join(dataDir, CA_STORE_FILE);
}

/** Returns the CA store path of `dataDir`, or throws ERR_CA_NOT_INITIALIZED when there is none. */
export function requireCaStore(dataDir: string): string {
  const file = caStorePath(dataDir);
  if (!existsSync(file)) {
    throw new EwiiError(CaErrorCode.notInitialized, `no CA store at ${file}; initialize the data directory first with "ewii init --data-dir ${dataDir}" ("ewii dev" does it on first start)`);
  }
  return file;
}

export interface CaContextOptions {
  dataDir: string;
  kek: Kek;
  now?: () => Date;
  logger?: Logger;
  svidTtlMs?: number;
  caValidityMs?: number;
  publisher?: RevocationPublisher;
}

/**
 * Opens an initialized CA store and checks the KEK against the stored check
 * value. Throws ERR_CA_NOT_INITIALIZED or ERR_KEK_WRONG.
 */
export function openCaContext(options: CaContextOptions): CaContext {
  const file = requireCaStore(options.dataDir);
  const store = openSqliteCaStore(file);
  try {
    const operatorTrustDomain = store.getMeta(MetaKey.operatorTrustDomain)?.toString("utf8");
    const check = store.getMeta(MetaKey.kekCheck);
    if (operatorTrustDomain === undefined || check === undefined) {
      throw new EwiiError(CaErrorCode.notInitialized, `the CA store ${file} was never fully initialized; remove ${options.dataDir} and initialize again`);
    }
    options.kek.verifyCheckValue(check);
    return {
      store,
      kek: options.kek,
      now: options.now ?? (() => new Date()),
      logger: options.logger ?? silentLogger(),
      operatorTrustDomain,
      svidTtlMs: options.svidTtlMs ?? DEFAULT_SVID_TTL_MS,
      caValidityMs: options.caValidityMs ?? DEFAULT_CA_VALIDITY_MS,
      publisher: options.publisher ?? noopRevocationPublisher,
      signers: new Map(),
    };
  } catch (err) {
    store.close();
    throw err;
  }
}

export interface InitOperatorOptions {
  dataDir: string;
  operatorTrustDomain: string;
  kek: Kek;
  /** Service names; each gets `spiffe://<td>/service/<name>`, for example "ca", "policy", "audit", "relay", "hub". */
  services: string[];
  /** Admin names; each gets `spiffe://<td>/admin/<name>`. */
  admins: string[];
  /** Internal callers of the hub; each gets `spiffe://<td>/caller/<name>`. */
  callers: string[];
  now?: () => Date;
  logger?: Logger;
  svidTtlMs?: number;
  caValidityMs?: number;
}

export interface InitOperatorResult {
  /** SHA-256 of the operator root CA certificate (DER), lowercase hex, as join tokens carry it. */
  rootFingerprint: string;
  rootCertDer: Buffer;
  credentials: { kind: OperatorIdentityKind; name: string; spiffeId: string; paths: CredentialPaths }[];
}

/**
 * Creates the CA store, the operator root CA and the credentials of every
 * operator service, admin and internal caller under `<dataDir>/credentials/<name>/`.
 * Throws ERR_ALREADY_INITIALIZED when the data directory already has a store.
 */
export function initOperator(options: InitOperatorOptions): InitOperatorResult {
  const trustDomain = validateTrustDomain(options.operatorTrustDomain);
  const identities = listIdentities(options);
  const file = caStorePath(options.dataDir);
  if (existsSync(file)) {
    throw new EwiiError(
      CaErrorCode.alreadyInitialized,
      `the data directory ${options.dataDir} already holds a CA store; to start over, stop every service and remove ${options.dataDir} (this destroys every CA key)`,
    );
  }
  mkdirSync(options.dataDir, { recursive: true, mode: CREDENTIAL_DIR_MODE });
  chmodSync(options.dataDir, CREDENTIAL_DIR_MODE);

  const now = options.now ?? (() => new Date());
  const store = openSqliteCaStore(file);
  const root = newCaRecord(options.kek, {
    id: newCaId("operator"),
    trustDomain,
    tenant: null,
    state: "active",
    now: now(),
    validityMs: options.caValidityMs ?? DEFAULT_CA_VALIDITY_MS,
  });
  const ctx: CaContext = {
    store,
    kek: options.kek,
    now,
    logger: options.logger ?? silentLogger(),
    operatorTrustDomain: trustDomain,
    svidTtlMs: options.svidTtlMs ?? DEFAULT_SVID_TTL_MS,
    caValidityMs: options.caValidityMs ?? DEFAULT_CA_VALIDITY_MS,
    publisher: noopRevocationPublisher,
    signers: new Map(),
  };
  try {
    store.transaction(() => {
      store.insertCa(root);
      markBundleChanged(ctx, trustDomain);
      store.setMeta(MetaKey.operatorTrustDomain, Buffer.from(trustDomain, "utf8"));
      store.setMeta(MetaKey.rootCaId, Buffer.from(root.id, "utf8"));
      // Written last: openCaContext treats a store without it as unfinished.
      store.setMeta(MetaKey.kekCheck, options.kek.createCheckValue());
    });
    const credentials = identities.map(({ kind, name }) => {
      const credential = issueOperatorCredential(ctx, { kind, name });
      return { kind, name, spiffeId: credential.spiffeId, paths: writeCredentialFiles(options.dataDir, name, credential) };
    });
    const rootFingerprint = createHash("sha256").update(root.certDer).digest("hex");
    ctx.logger.info("operator CA initialized", {
      [LogField.trustDomain]: trustDomain,
      root_fingerprint: rootFingerprint,
      identities: credentials.map((entry) => entry.spiffeId).join(","),
    });
    return { rootFingerprint, rootCertDer: root.certDer, credentials };
  } finally {
    store.close();
  }
}

/** Checks identity names and that no two share a credential directory. */
function listIdentities(options: InitOperatorOptions): { kind: OperatorIdentityKind; name: string }[] {
  const identities = [
    ...options.services.map((name) => ({ kind: "service" as const, name })),
    ...options.admins.map((name) => ({ kind: "admin" as const, name })),
    ...options.callers.map((name) => ({ kind: "caller" as const, name })),
  ];
  const seen = new Set<string>();
  for (const { kind, name } of identities) {
    if (!TENANT_NAME_PATTERN.test(name)) {
      throw new TypeError(`${kind} name "${name}" must be 1 to 63 lowercase letters, digits and hyphens`);
    }
    if (seen.has(name)) throw new TypeError(`identity name "${name}" is used twice; services, admins and callers share the credentials directory`);
    seen.add(name);
  }
  return identities;
}
