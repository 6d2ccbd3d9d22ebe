import { X509Certificate, createHash } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { EwiiError } from "../errors.js";
import { IdentityErrorCode } from "./errors.js";
import { derToPem, pemToDerList } from "./pem.js";
import { validateTrustDomain } from "./spiffe-id.js";

/**
 * Trust bundles in the SPIFFE bundle format (SPIFFE Trust Domain and Bundle
 * specification, and X509-SVID specification section 6): a JWK Set whose
 * `x509-svid` entries each carry one CA certificate in `x5c`, plus a
 * `spiffe_sequence` that grows with every change.
 */

/** Largest bundle document accepted by fromJwks, in bytes. */
export const MAX_BUNDLE_JSON_BYTES = 1024 * 1024;

const X509_SVID_USE = "x509-svid";

function invalid(trustDomain: string, detail: string, cause?: unknown): EwiiError {
  return new EwiiError(IdentityErrorCode.bundleInvalid, `invalid trust bundle for "${trustDomain}": ${detail}`, {
    status: status.INVALID_ARGUMENT,
    cause,
  });
}

interface PublicJwk {
  kty?: unknown;
  crv?: unknown;
  x?: unknown;
  y?: unknown;
  n?: unknown;
  e?: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export class TrustBundle {
  readonly trustDomain: string;
  /** Bundle version; a newer bundle of the same trust domain has a higher sequence. */
  readonly sequence: number;
  /** X.509 authorities (CA certificates) that anchor SVIDs of this trust domain. */
  readonly authorities: readonly X509Certificate[];

  constructor(trustDomain: string, authorities: readonly X509Certificate[], sequence: number) {
    this.trustDomain = validateTrustDomain(trustDomain);
    if (!Number.isSafeInteger(sequence) || sequence < 0) throw new TypeError(`bundle sequence must be a non-negative safe integer, got ${sequence}`);
    const unique: X509Certificate[] = [];
    for (const authority of authorities) {
      if (!(authority instanceof X509Certificate)) throw new TypeError("bundle authorities must be node:crypto X509Certificate objects");
      if (!unique.some((existing) => existing.raw.equals(authority.raw))) unique.push(authority);
    }
    this.sequence = sequence;
    this.authorities = Object.freeze(unique);
  }

  /** Serializes the bundle as a SPIFFE bundle JWK Set. */
  toJwks(): string {
    const keys = this.authorities.map((authority) => {
      const jwk = authority.publicKey.export({ format: "jwk" });
      return { use: X509_SVID_USE, ...jwk, x5c: [authority.raw.toString("base64")] };
    });
    return JSON.stringify({ keys, spiffe_sequence: this.sequence });
  }

  /**
   * Parses a SPIFFE bundle JWK Set. Entries whose `use` is not `x509-svid`
   * (such as `jwt-svid` keys) are skipped, and so are `x509-svid` entries
   * with an empty `x5c`. Only the first `x5c` value counts. Throws
   * ERR_BUNDLE_INVALID on anything else that is malformed, including a key
   * that does not match its certificate.
   */
  static fromJwks(trustDomain: string, json: string): TrustBundle {
    const domain = validateTrustDomain(trustDomain);
    if (json.length > MAX_BUNDLE_JSON_BYTES) throw invalid(domain, `document is ${json.length} bytes, more than the ${MAX_BUNDLE_JSON_BYTES} byte limit`);
    let document: unknown;
    try {
      document = JSON.parse(json);
    } catch (err: unknown) {
      throw invalid(domain, "document is not valid JSON", err);
    }
    if (!isRecord(document)) throw invalid(domain, "document must be a JSON object with a \"keys\" array");
    const keys = document.keys;
    if (!Array.isArray(keys)) throw invalid(domain, "\"keys\" is missing or not an array");
    const sequence = document.spiffe_sequence ?? 0;
    if (typeof sequence !== "number" || !Number.isSafeInteger(sequence) || sequence < 0) {
      throw invalid(domain, "\"spiffe_sequence\" must be a non-negative integer");
    }

    const authorities: X509Certificate[] = [];
    keys.forEach((key: unknown, index: number) => {
      if (!isRecord(key)) throw invalid(domain, `keys[${index}] is not a JSON object`);
      if (typeof key.use !== "string") throw invalid(domain, `keys[${index}].use is missing or not a string`);
      if (key.use !== X509_SVID_USE) return;
      const x5c = key.x5c;
      if (x5c === undefined || (Array.isArray(x5c) && x5c.length === 0)) return;
      if (!Array.isArray(x5c) || typeof x5c[0] !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(x5c[0])) {
        throw invalid(domain, `keys[${index}].x5c must be an array of base64 DER certificates`);
      }
      let authority: X509Certificate;
      try {
        authority = new X509Certificate(Buffer.from(x5c[0], "base64"));
      } catch (err: unknown) {
        throw invalid(domain, `keys[${index}].x5c[0] is not a DER X.509 certificate`, err);
      }
      TrustBundle.checkKeyMatches(domain, index, key, authority);
      authorities.push(authority);
    });
    return new TrustBundle(domain, authorities, sequence);
  }

  private static checkKeyMatches(domain: string, index: number, key: PublicJwk, authority: X509Certificate): void {
    const expected = authority.publicKey.export({ format: "jwk" }) as PublicJwk;
    for (const member of ["kty", "crv", "x", "y", "n", "e"] as const) {
      if (key[member] !== expected[member]) {
        throw invalid(domain, `keys[${index}].${member} does not match the public key of the certificate in x5c[0]`);
      }
    }
  }

  /** Serializes the authorities as concatenated PEM CERTIFICATE blocks. */
  toPem(): string {
    return this.authorities.map((authority) => derToPem(authority.raw, "CERTIFICATE")).join("");
  }

  /** Parses concatenated PEM CERTIFICATE blocks. Throws ERR_BUNDLE_INVALID. */
  static fromPem(trustDomain: string, pem: string, sequence: number): TrustBundle {
    const domain = validateTrustDomain(trustDomain);
    let blocks: Buffer[];
    try {
      blocks = pemToDerList(pem);
    } catch (err: unknown) {
      throw invalid(domain, err instanceof Error ? err.message : "PEM text is malformed", err);
    }
    const authorities = blocks.map((der, index) => {
      try {
        return new X509Certificate(der);
      } catch (err: unknown) {
        throw invalid(domain, `PEM block ${index + 1} is not an X.509 certificate`, err);
      }
    });
    return new TrustBundle(domain, authorities, sequence);
  }

  /** Returns the SHA-256 fingerprint of each authority's DER, lowercase hex without separators. */
  fingerprints(): string[] {
    return this.authorities.map((authority) => createHash("sha256").update(authority.raw).digest("hex"));
  }
}

/** Trust bundles of a component, one per trust domain. */
export class BundleSet {
  private readonly bundles = new Map<string, TrustBundle>();

  get(trustDomain: string): TrustBundle | undefined {
    return this.bundles.get(trustDomain);
  }

  /** Adds or replaces the bundle of its trust domain. */
  set(bundle: TrustBundle): void {
    this.bundles.set(bundle.trustDomain, bundle);
  }

  delete(trustDomain: string): boolean {
    return this.bundles.delete(trustDomain);
  }

  all(): TrustBundle[] {
    return [...this.bundles.values()];
  }

  /** Returns every authority of every trust domain as PEM, for a TLS trust store. */
  allAuthoritiesPem(): string {
    return this.all()
      .map((bundle) => bundle.toPem())
      .join("");
  }
}
