import { X509Certificate, createHash, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { readCertificateFields, type CertificateFields } from "./certificate-fields.js";
import { Tag, sequence, tlv, unsignedInteger, x509Time, oid } from "./der.js";
import { serialHexFromBytes } from "./serial.js";
import type { SpiffeId } from "./spiffe-id.js";
import { validateTrustDomain } from "./spiffe-id.js";
import {
  ECDSA_WITH_SHA256,
  KeyUsageBit,
  OID_AUTHORITY_KEY_IDENTIFIER,
  OID_BASIC_CONSTRAINTS,
  OID_COMMON_NAME,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_SUBJECT_ALT_NAME,
  OID_SUBJECT_KEY_ID,
  P256_SPKI_BYTES,
  P256_SPKI_PREFIX,
  VERSION_V3,
  authorityKeyIdentifierValue,
  extension,
  keyUsageValue,
  signTbs,
  uriGeneralName,
  dnsGeneralName,
} from "./x509-encoding.js";

/**
 * X509-SVID issuance with a lean DER encoder over node:crypto. Every
 * certificate follows the SPIFFE X509-SVID specification (sections 3 and 4)
 * and the RFC 5280 profile. The encoder copies the CA's subject Name and
 * key identifier once per CA and only encodes the varying fields per leaf,
 * because a generic ASN.1 schema encoder is about ten times slower here.
 */

/** Size of generated serial numbers in bytes; RFC 5280 section 4.1.2.2 allows at most 20. */
export const SERIAL_BYTES = 16;
const MAX_SERIAL_BYTES = 20;

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo of the public key, DER. */
  publicKeySpkiDer: Buffer;
}

/** A CA able to sign: its certificate, the same certificate as DER, and its private key. */
export interface SigningCa {
  cert: X509Certificate;
  certDer: Buffer;
  privateKey: KeyObject;
}

/** Generates an ECDSA P-256 key pair. */
export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return { privateKey, publicKey, publicKeySpkiDer: publicKey.export({ type: "spki", format: "der" }) };
}

const leafBasicConstraints = extension(OID_BASIC_CONSTRAINTS, true, sequence());
const caBasicConstraints = extension(OID_BASIC_CONSTRAINTS, true, sequence(Buffer.from([Tag.boolean, 1, 0xff])));
const leafKeyUsage = extension(OID_KEY_USAGE, true, keyUsageValue([KeyUsageBit.digitalSignature]));
const caKeyUsage = extension(OID_KEY_USAGE, true, keyUsageValue([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign]));
const leafExtKeyUsage = extension(OID_EXT_KEY_USAGE, false, sequence(oid("1.3.6.1.5.5.7.3.1"), oid("1.3.6.1.5.5.7.3.2")));
const emptyName = sequence();

/** Per-CA values that every issued leaf repeats, computed once per CA certificate. */
interface CaTemplate {
  fields: CertificateFields;
  authorityKeyIdentifier: Buffer;
}

const caTemplates = new WeakMap<X509Certificate, CaTemplate>();

function templateFor(ca: SigningCa): CaTemplate {
  let template = caTemplates.get(ca.cert);
  if (template === undefined) {
    const fields = readCertificateFields(ca.certDer);
    template = { fields, authorityKeyIdentifier: extension(OID_AUTHORITY_KEY_IDENTIFIER, false, authorityKeyIdentifierValue(fields.keyIdentifier)) };
    caTemplates.set(ca.cert, template);
  }
  return template;
}

function checkValidity(notBefore: Date, notAfter: Date): void {
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw new TypeError("notBefore and notAfter must be valid dates");
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new TypeError(`notAfter ${notAfter.toISOString()} must be later than notBefore ${notBefore.toISOString()}`);
  }
}

function pickSerial(serial: Buffer | undefined): Buffer {
  if (serial === undefined) {
    const generated = randomBytes(SERIAL_BYTES);
    // Clear the top bit so that the INTEGER is positive without a pad byte,
    // and keep it non-zero as RFC 5280 section 4.1.2.2 requires.
    generated[0] &= 0x7f;
    if (generated.every((byte) => byte === 0)) generated[SERIAL_BYTES - 1] = 1;
    return generated;
  }
  if (serial.length === 0 || serial.length > MAX_SERIAL_BYTES || serial.every((byte) => byte === 0)) {
    throw new TypeError(`serial must be 1 to ${MAX_SERIAL_BYTES} bytes and non-zero, got ${serial.length} bytes`);
  }
  return serial;
}

export interface RootCaOptions {
  trustDomain: string;
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  /** Defaults to a fresh ECDSA P-256 key pair. */
  keyPair?: KeyPair;
  /** Serial number as unsigned big-endian bytes; defaults to 16 random bytes. */
  serial?: Buffer;
}

/**
 * Creates a self-signed root CA for one trust domain: basicConstraints
 * CA=true and keyUsage keyCertSign+cRLSign, both critical, a subject key
 * identifier, and the trust domain's own SPIFFE ID (no path) as its URI SAN,
 * as section 3.2 of the X509-SVID specification allows for signing certificates.
 */
export function createRootCa(options: RootCaOptions): SigningCa {
  const trustDomain = validateTrustDomain(options.trustDomain);
  if (options.commonName.length === 0 || options.commonName.length > 64) {
    throw new TypeError(`commonName must be 1 to 64 characters (RFC 5280 ub-common-name), got ${options.commonName.length}`);
  }
  checkValidity(options.notBefore, options.notAfter);
  const keyPair = options.keyPair ?? generateKeyPair();
  const spki = keyPair.publicKeySpkiDer;
  if (spki.length !== P256_SPKI_BYTES || !spki.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)) {
    throw new TypeError("createRootCa needs an ECDSA P-256 key pair");
  }

  // Key identifier by RFC 5280 section 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
  const keyId = createHash("sha1").update(spki.subarray(P256_SPKI_PREFIX.length)).digest();
  const name = sequence(tlv(Tag.set, sequence(OID_COMMON_NAME, tlv(Tag.utf8String, Buffer.from(options.commonName, "utf8")))));
  const extensions = sequence(
    caBasicConstraints,
    caKeyUsage,
    extension(OID_SUBJECT_KEY_ID, false, tlv(Tag.octetString, keyId)),
    extension(OID_AUTHORITY_KEY_IDENTIFIER, false, authorityKeyIdentifierValue(keyId)),
    extension(OID_SUBJECT_ALT_NAME, false, sequence(uriGeneralName(`spiffe://${trustDomain}`))),
  );

  const tbs = sequence(
    VERSION_V3,
    unsignedInteger(pickSerial(options.serial)),
    ECDSA_WITH_SHA256,
    name,
    sequence(x509Time(options.notBefore), x509Time(options.notAfter)),
    name,
    spki,
    tlv(0xa3, extensions),
  );
  const certDer = signTbs(tbs, keyPair.privateKey);
  return { certDer, cert: new X509Certificate(certDer), privateKey: keyPair.privateKey };
}

export interface IssueX509SvidOptions {
  ca: SigningCa;
  /** SubjectPublicKeyInfo DER of an ECDSA P-256 key, as `parseCsr` returns it. */
  subjectPublicKeySpkiDer: Uint8Array;
  spiffeId: SpiffeId;
  notBefore: Date;
  /** Clamped to the CA's own notAfter. */
  notAfter: Date;
  /** Serial number as unsigned big-endian bytes; defaults to 16 random bytes. */
  serial?: Buffer;
  /**
   * DNS SANs next to the SPIFFE ID, which the X509-SVID specification
   * allows. Server SVIDs carry "localhost" so that tools that check host
   * names, such as grpcurl, can verify them.
   */
  dnsNames?: readonly string[];
}

export interface IssuedSvid {
  certDer: Buffer;
  /** Serial number in lowercase hex without leading zeros. */
  serial: string;
}

/**
 * Issues a leaf X509-SVID: empty subject with the SPIFFE ID as the only,
 * critical URI SAN (RFC 5280 section 4.1.2.6), basicConstraints CA=false and
 * keyUsage digitalSignature (both critical), extKeyUsage serverAuth and
 * clientAuth, and the CA's key identifier as authority key identifier.
 */
export function issueX509Svid(options: IssueX509SvidOptions): IssuedSvid {
  const { ca, spiffeId } = options;
  const spki = Buffer.from(options.subjectPublicKeySpkiDer.buffer, options.subjectPublicKeySpkiDer.byteOffset, options.subjectPublicKeySpkiDer.byteLength);
  if (spki.length !== P256_SPKI_BYTES || !spki.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)) {
    throw new TypeError("issueX509Svid needs the SubjectPublicKeyInfo of an ECDSA P-256 key with an uncompressed point; pass what parseCsr returns");
  }
  if (spiffeId.path === "") throw new TypeError(`leaf SPIFFE ID ${spiffeId.toString()} needs a non-root path (X509-SVID section 3.1)`);
  checkValidity(options.notBefore, options.notAfter);

  const template = templateFor(ca);
  const caNotAfter = template.fields.notAfter;
  const notAfter = options.notAfter.getTime() > caNotAfter.getTime() ? caNotAfter : options.notAfter;
  if (notAfter.getTime() <= options.notBefore.getTime()) {
    throw new TypeError(`CA expires at ${caNotAfter.toISOString()}, before the requested notBefore ${options.notBefore.toISOString()}`);
  }
  const serial = pickSerial(options.serial);

  const extensions = sequence(
    leafBasicConstraints,
    leafKeyUsage,
    leafExtKeyUsage,
    extension(OID_SUBJECT_ALT_NAME, true, sequence(uriGeneralName(spiffeId.toString()), ...(options.dnsNames ?? []).map(checkedDnsName))),
    template.authorityKeyIdentifier,
  );
  const tbs = sequence(
    VERSION_V3,
    unsignedInteger(serial),
    ECDSA_WITH_SHA256,
    template.fields.subjectNameDer,
    sequence(x509Time(options.notBefore), x509Time(notAfter)),
    emptyName,
    spki,
    tlv(0xa3, extensions),
  );
  return { certDer: signTbs(tbs, ca.privateKey), serial: serialHexFromBytes(serial) };
}

const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function checkedDnsName(name: string): Buffer {
  if (!DNS_NAME.test(name)) throw new TypeError(`DNS SAN "${name}" is not a lowercase DNS name`);
  return dnsGeneralName(name);
}
