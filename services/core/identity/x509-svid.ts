import "reflect-metadata";
import { X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { TrustBundle } from "./bundle.js";
import { IdentityErrorCode, svidError } from "./errors.js";
import { serialHex } from "./serial.js";
import { SpiffeId } from "./spiffe-id.js";

/**
 * X509-SVID validation as set out in the SPIFFE X509-SVID specification,
 * sections 3 to 5: leaf and signing certificate rules, then RFC 5280 path
 * validation up to an authority of the bundle of the leaf's own trust
 * domain. A CA of another trust domain never anchors an SVID, which is what
 * keeps tenants apart. Every rejection is an EwiiError with its own code and
 * gRPC status UNAUTHENTICATED.
 */

/** Maximum certificates in a presented chain, leaf included. */
export const MAX_CHAIN_CERTS = 10;

const OID_BASIC_CONSTRAINTS = "2.5.29.19";
const OID_KEY_USAGE = "2.5.29.15";
const OID_EXT_KEY_USAGE = "2.5.29.37";
const OID_SUBJECT_ALT_NAME = "2.5.29.17";

/** Critical extensions this validator processes; RFC 5280 section 4.2 requires rejecting any other critical one. */
const UNDERSTOOD_CRITICAL_EXTENSIONS = new Set([OID_BASIC_CONSTRAINTS, OID_KEY_USAGE, OID_EXT_KEY_USAGE, OID_SUBJECT_ALT_NAME]);

export interface VerifiedSvid {
  spiffeId: SpiffeId;
  /** Leaf serial number, lowercase hex without leading zeros. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  leaf: X509Certificate;
  /** The verified path: the leaf first, then the presented intermediates, then the bundle authority. */
  chain: X509Certificate[];
}

/** Anything that returns the bundle of a trust domain, such as a BundleSet. */
export interface BundleSource {
  get(trustDomain: string): TrustBundle | undefined;
}

export interface VerifyX509SvidOptions {
  /** Time at which every certificate must be valid; defaults to the current time. */
  now?: Date;
}

interface ParsedCertificate {
  native: X509Certificate;
  parsed: x509.X509Certificate;
  /** Position in the verified path, 0 for the leaf. */
  index: number;
}

function describe(index: number): string {
  return index === 0 ? "leaf certificate" : `certificate ${index} of the chain (0 is the leaf)`;
}

function parseCertificate(der: Uint8Array, index: number): ParsedCertificate {
  try {
    const native = new X509Certificate(der);
    // The cast is safe because native.raw is a Buffer over a plain ArrayBuffer, never a SharedArrayBuffer.
    const parsed = new x509.X509Certificate(native.raw as Uint8Array<ArrayBuffer>);
    const seen = new Set<string>();
    for (const extension of parsed.extensions) {
      if (seen.has(extension.type)) throw new Error(`extension ${extension.type} appears twice`);
      seen.add(extension.type);
    }
    return { native, parsed, index };
  } catch (err: unknown) {
    throw svidError(IdentityErrorCode.svidMalformed, `${describe(index)} is not a valid DER X.509 certificate`, err);
  }
}

function checkCriticalExtensions(cert: ParsedCertificate): void {
  for (const extension of cert.parsed.extensions) {
    if (extension.critical && !UNDERSTOOD_CRITICAL_EXTENSIONS.has(extension.type)) {
      throw svidError(
        IdentityErrorCode.svidUnknownCriticalExtension,
        `${describe(cert.index)} has critical extension ${extension.type}, which this validator does not process`,
      );
    }
  }
}

function leafSpiffeId(leaf: ParsedCertificate): SpiffeId {
  const san = leaf.parsed.getExtension(x509.SubjectAlternativeNameExtension);
  const uris = san === null ? [] : san.names.items.filter((name) => name.type === "url").map((name) => name.value);
  if (uris.length === 0) throw svidError(IdentityErrorCode.svidNoUriSan, "leaf certificate has no URI SAN; an X509-SVID carries its SPIFFE ID as exactly one URI SAN");
  if (uris.length > 1) {
    throw svidError(IdentityErrorCode.svidMultipleUriSans, `leaf certificate has ${uris.length} URI SANs; an X509-SVID must have exactly one`);
  }
  let id: SpiffeId;
  try {
    id = SpiffeId.parse(uris[0]);
  } catch (err: unknown) {
    const reason = err instanceof Error ? err.message : String(err);
    throw svidError(IdentityErrorCode.svidInvalidSpiffeId, `leaf certificate URI SAN is not a valid SPIFFE ID: ${reason}`, err);
  }
  if (id.path === "") {
    throw svidError(IdentityErrorCode.svidRootPath, `leaf SPIFFE ID ${id.toString()} has no path; only signing certificates may carry a trust domain's root ID`);
  }
  return id;
}

function checkLeafConstraints(leaf: ParsedCertificate): void {
  const basicConstraints = leaf.parsed.getExtension(x509.BasicConstraintsExtension);
  if (basicConstraints?.ca === true) throw svidError(IdentityErrorCode.svidLeafIsCa, "leaf certificate has basicConstraints CA=true; an X509-SVID leaf must have CA=false");
  const keyUsage = leaf.parsed.getExtension(x509.KeyUsagesExtension);
  if (keyUsage === null) throw svidError(IdentityErrorCode.svidKeyUsage, "leaf certificate has no keyUsage extension; an X509-SVID must set digitalSignature");
  if ((keyUsage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    throw svidError(IdentityErrorCode.svidKeyUsage, "leaf certificate keyUsage lacks digitalSignature");
  }
  if ((keyUsage.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) {
    throw svidError(IdentityErrorCode.svidKeyUsage, "leaf certificate keyUsage sets keyCertSign or cRLSign, which a leaf SVID must not");
  }
  checkCriticalExtensions(leaf);
}

function checkSigner(signer: ParsedCertificate, source: string): void {
  const basicConstraints = signer.parsed.getExtension(x509.BasicConstraintsExtension);
  if (basicConstraints === null || !basicConstraints.ca) {
    throw svidError(IdentityErrorCode.svidSignerNotCa, `${source} ${describe(signer.index)} signs another certificate but does not have basicConstraints CA=true`);
  }
  const keyUsage = signer.parsed.getExtension(x509.KeyUsagesExtension);
  if (keyUsage === null || (keyUsage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw svidError(IdentityErrorCode.svidSignerNotCa, `${source} ${describe(signer.index)} signs another certificate but its keyUsage lacks keyCertSign`);
  }
  // The signer at index k has k - 1 intermediate CA certificates below it.
  const pathLength = basicConstraints.pathLength;
  if (pathLength !== undefined && signer.index - 1 > pathLength) {
    throw svidError(
      IdentityErrorCode.svidPathLength,
      `${source} ${describe(signer.index)} allows ${pathLength} intermediate CA certificates below it, but the chain has ${signer.index - 1}`,
    );
  }
  checkCriticalExtensions(signer);
}

function isSignedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  return child.checkIssued(issuer) && child.verify(issuer.publicKey);
}

function checkValidityAt(cert: ParsedCertificate, now: Date): void {
  if (now.getTime() > cert.parsed.notAfter.getTime()) {
    throw svidError(IdentityErrorCode.svidExpired, `${describe(cert.index)} expired at ${cert.parsed.notAfter.toISOString()} (now ${now.toISOString()})`);
  }
  if (now.getTime() < cert.parsed.notBefore.getTime()) {
    throw svidError(
      IdentityErrorCode.svidNotYetValid,
      `${describe(cert.index)} is not valid before ${cert.parsed.notBefore.toISOString()} (now ${now.toISOString()}); check the clocks`,
    );
  }
}

/**
 * Verifies an X509-SVID chain (DER certificates, leaf first, then any
 * intermediates) against the bundle of the trust domain in the leaf's
 * SPIFFE ID, and returns the verified identity. Throws an EwiiError with an
 * ERR_SVID_... code on the first rule broken.
 */
export function verifyX509Svid(chainDer: readonly Uint8Array[], bundles: BundleSource, options: VerifyX509SvidOptions = {}): VerifiedSvid {
  const now = options.now ?? new Date();
  if (chainDer.length === 0) throw svidError(IdentityErrorCode.svidMalformed, "certificate chain is empty; present the leaf SVID first");
  if (chainDer.length > MAX_CHAIN_CERTS) {
    throw svidError(IdentityErrorCode.svidMalformed, `certificate chain has ${chainDer.length} certificates, more than the limit of ${MAX_CHAIN_CERTS}`);
  }
  const presented = chainDer.map((der, index) => parseCertificate(der, index));
  const leaf = presented[0];

  const spiffeId = leafSpiffeId(leaf);
  checkLeafConstraints(leaf);
  for (const signer of presented.slice(1)) checkSigner(signer, "presented");

  const bundle = bundles.get(spiffeId.trustDomain);
  if (bundle === undefined || bundle.authorities.length === 0) {
    throw svidError(IdentityErrorCode.svidUnknownTrustDomain, `no trust bundle for trust domain "${spiffeId.trustDomain}" of SPIFFE ID ${spiffeId.toString()}`);
  }

  for (let i = 0; i + 1 < presented.length; i++) {
    if (!isSignedBy(presented[i].native, presented[i + 1].native)) {
      throw svidError(IdentityErrorCode.svidUntrustedChain, `${describe(i)} is not signed by ${describe(i + 1)}; present the chain in order, leaf first`);
    }
  }

  const top = presented[presented.length - 1];
  const path = presented.slice();
  const topIsAuthority = bundle.authorities.some((authority) => authority.raw.equals(top.native.raw));
  if (!topIsAuthority) {
    const anchor = bundle.authorities.find((authority) => isSignedBy(top.native, authority));
    if (anchor === undefined) {
      throw svidError(
        IdentityErrorCode.svidUntrustedChain,
        `chain of ${spiffeId.toString()} does not lead to any of the ${bundle.authorities.length} authorities of trust domain "${spiffeId.trustDomain}"`,
      );
    }
    const anchorCertificate = parseCertificate(anchor.raw, presented.length);
    checkSigner(anchorCertificate, "bundle authority,");
    path.push(anchorCertificate);
  }

  for (const cert of path) checkValidityAt(cert, now);

  return {
    spiffeId,
    serial: serialHex(leaf.native),
    notBefore: leaf.parsed.notBefore,
    notAfter: leaf.parsed.notAfter,
    leaf: leaf.native,
    chain: path.map((cert) => cert.native),
  };
}
