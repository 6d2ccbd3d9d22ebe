import { sign as signData, type KeyObject } from "node:crypto";
import { bitString, contextTag, derTrue, oid, octetString, sequence, smallInteger, tlv, Tag } from "./der.js";

/**
 * Pre-encoded DER pieces shared by the certificate and CRL writers, and the
 * signing step that wraps a TBS structure (RFC 5280 sections 4.1 and 5.1).
 */

/** AlgorithmIdentifier for ecdsa-with-SHA256, with parameters absent as RFC 5758 section 3.2 requires. */
export const ECDSA_WITH_SHA256 = sequence(oid("1.2.840.10045.4.3.2"));

/** `[0] EXPLICIT INTEGER 2`, the X.509 v3 version field. */
export const VERSION_V3 = tlv(contextTag(0, true), smallInteger(2));

export const OID_BASIC_CONSTRAINTS = oid("2.5.29.19");
export const OID_KEY_USAGE = oid("2.5.29.15");
export const OID_EXT_KEY_USAGE = oid("2.5.29.37");
export const OID_SUBJECT_ALT_NAME = oid("2.5.29.17");
export const OID_AUTHORITY_KEY_IDENTIFIER = oid("2.5.29.35");
export const OID_CRL_NUMBER = oid("2.5.29.20");
export const OID_COMMON_NAME = oid("2.5.4.3");
export const OID_SUBJECT_KEY_ID = oid("2.5.29.14");

/** DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point (id-ecPublicKey, prime256v1). */
export const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");
/** Total size of such a SubjectPublicKeyInfo in bytes. */
export const P256_SPKI_BYTES = 91;

/** Encodes one Extension: SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING }. */
export function extension(extnId: Buffer, critical: boolean, valueDer: Uint8Array): Buffer {
  return critical ? sequence(extnId, derTrue, octetString(valueDer)) : sequence(extnId, octetString(valueDer));
}

/** KeyUsage bits, numbered as in RFC 5280 section 4.2.1.3. */
export const KeyUsageBit = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

/** Encodes a KeyUsage BIT STRING with trailing zero bits removed, as DER requires. */
export function keyUsageValue(bits: readonly number[]): Buffer {
  let mask = 0;
  for (const bit of bits) mask |= 0x80 >> bit;
  if (mask === 0) throw new TypeError("key usage needs at least one bit");
  let unused = 0;
  while ((mask & (1 << unused)) === 0) unused++;
  return tlv(Tag.bitString, Buffer.from([unused, mask]));
}

/** GeneralName uniformResourceIdentifier `[6] IA5String`. */
export function uriGeneralName(uri: string): Buffer {
  return tlv(contextTag(6, false), Buffer.from(uri, "ascii"));
}

/** GeneralName dNSName [2] IA5String (RFC 5280 section 4.2.1.6). */
export function dnsGeneralName(name: string): Buffer {
  return tlv(contextTag(2, false), Buffer.from(name, "ascii"));
}

/** AuthorityKeyIdentifier value: SEQUENCE { [0] keyIdentifier }. */
export function authorityKeyIdentifierValue(keyId: Uint8Array): Buffer {
  return sequence(tlv(contextTag(0, false), keyId));
}

/** Signs a TBS structure and returns SEQUENCE { tbs, signatureAlgorithm, signatureValue }. */
export function signTbs(tbs: Buffer, privateKey: KeyObject): Buffer {
  // For EC keys node:crypto returns the DER Ecdsa-Sig-Value that RFC 5758 section 3.2 puts in the BIT STRING.
  const signature = signData("sha256", tbs, privateKey);
  return sequence(tbs, ECDSA_WITH_SHA256, bitString(signature));
}
