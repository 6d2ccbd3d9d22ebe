import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Logger } from "../core/log.js";
import { EwiiError } from "../core/errors.js";
import { createRootCa, generateKeyPair, NOT_BEFORE_BACKDATE_MS, type SigningCa } from "../core/identity/index.js";
import { CaErrorCode } from "./errors.js";
import type { Kek } from "./kek.js";
import type { RevocationPublisher } from "./revocation-publisher.js";
import type { CaRecord, CaStore } from "./store.js";

/** Validity of a new root CA (operator or tenant) when none is configured: ten years. */
export const DEFAULT_CA_VALIDITY_MS = 10 * 365 * 24 * 3600 * 1000;
/** Default SVID lifetime: 24 hours. */
export const DEFAULT_SVID_TTL_MS = 24 * 3600 * 1000;
/** Shortest SVID lifetime accepted: one minute. */
export const MIN_SVID_TTL_MS = 60 * 1000;

/** Meta table keys. */
export const MetaKey = {
  operatorTrustDomain: "operator_trust_domain",
  rootCaId: "root_ca_id",
  kekCheck: "kek_check",
} as const;

/** Everything the CA domain modules share: the store, the KEK, the clock and settings. */
export interface CaContext {
  store: CaStore;
  kek: Kek;
  now: () => Date;
  logger: Logger;
  operatorTrustDomain: string;
  svidTtlMs: number;
  caValidityMs: number;
  publisher: RevocationPublisher;
  /** Decrypted signing CAs by CA id; a CA key is opened once per process. */
  signers: Map<string, SigningCa>;
  /** Called after a change of any trust bundle, for example to refresh the TLS trust store. */
  onTrustChange?: () => void;
}

/** Returns the signing form of a stored CA, opening its sealed key on first use. */
export function signingCaOf(ctx: CaContext, ca: CaRecord): SigningCa {
  const cached = ctx.signers.get(ca.id);
  if (cached !== undefined) return cached;
  const pkcs8 = ctx.kek.openCaKey(ca.id, ca.keyCiphertext);
  try {
    const privateKey = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
    const signer: SigningCa = { cert: new X509Certificate(ca.certDer), certDer: ca.certDer, privateKey };
    ctx.signers.set(ca.id, signer);
    return signer;
  } finally {
    pkcs8.fill(0);
  }
}

/**
 * Creates a self-signed CA for a trust domain and returns its store record,
 * with the private key sealed under the KEK. The caller inserts it.
 */
export function newCaRecord(
  kek: Kek,
  options: { id: string; trustDomain: string; tenant: string | null; state: CaRecord["state"]; now: Date; validityMs: number },
): CaRecord {
  const notBefore = new Date(options.now.getTime() - NOT_BEFORE_BACKDATE_MS);
  const notAfter = new Date(options.now.getTime() + options.validityMs);
  const keyPair = generateKeyPair();
  const ca = createRootCa({ trustDomain: options.trustDomain, commonName: commonNameFor(options.trustDomain), notBefore, notAfter, keyPair });
  const pkcs8 = keyPair.privateKey.export({ format: "der", type: "pkcs8" });
  try {
    return {
      id: options.id,
      trustDomain: options.trustDomain,
      tenant: options.tenant,
      certDer: ca.certDer,
      keyCiphertext: kek.sealCaKey(options.id, pkcs8),
      state: options.state,
      notBefore,
      notAfter,
      createdAt: options.now,
    };
  } finally {
    pkcs8.fill(0);
  }
}

/** RFC 5280 limits a common name to 64 characters; long trust domains are cut. */
function commonNameFor(trustDomain: string): string {
  const name = `Ewii CA ${trustDomain}`;
  return name.length <= 64 ? name : name.slice(0, 64);
}

/** Returns the active (signing) CA of a trust domain. */
export function activeCaOf(ctx: CaContext, trustDomain: string): CaRecord {
  const [active] = ctx.store.listCas(trustDomain, ["active"]);
  if (active === undefined) {
    throw new EwiiError(CaErrorCode.storeCorrupt, `trust domain ${trustDomain} has no active CA in the store; the CA store is damaged`);
  }
  return active;
}
