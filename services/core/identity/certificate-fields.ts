import { createHash } from "node:crypto";
import { DerError, Tag, children, contentOf, contextTag, encodingOf, expectElement, oid, readElement } from "./der.js";

/**
 * Lean reader for the TBSCertificate fields that issuance needs from a CA
 * certificate (RFC 5280 section 4.1): the subject Name as raw DER, the
 * validity and the key identifier. It avoids a full ASN.1 schema parse.
 */

export const OID_SUBJECT_KEY_IDENTIFIER = oid("2.5.29.14");

export interface CertificateFields {
  /** DER of the subject Name, to be copied into issued certificates as their issuer. */
  subjectNameDer: Buffer;
  /** DER of the SubjectPublicKeyInfo. */
  subjectPublicKeyInfoDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Subject key identifier: the extension's value, else the RFC 5280 section 4.2.1.2 method 1 SHA-1. */
  keyIdentifier: Buffer;
}

function decodeDigits(text: string, from: number, count: number): number {
  const slice = text.slice(from, from + count);
  if (!/^[0-9]+$/.test(slice)) throw new DerError(`time "${text}" has non-digit characters`);
  return Number(slice);
}

/** Decodes an RFC 5280 UTCTime or GeneralizedTime in the "YYMMDDHHMMSSZ" / "YYYYMMDDHHMMSSZ" forms. */
export function decodeX509Time(input: Uint8Array, element: { tag: number; contentStart: number; end: number }): Date {
  const text = Buffer.from(input.subarray(element.contentStart, element.end)).toString("ascii");
  let year: number;
  let rest: number;
  if (element.tag === Tag.utcTime && text.length === 13) {
    const yy = decodeDigits(text, 0, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = 2;
  } else if (element.tag === Tag.generalizedTime && text.length === 15) {
    year = decodeDigits(text, 0, 4);
    rest = 4;
  } else {
    throw new DerError(`unsupported time encoding "${text}"`);
  }
  if (!text.endsWith("Z")) throw new DerError(`time "${text}" is not in UTC`);
  const millis = Date.UTC(
    year,
    decodeDigits(text, rest, 2) - 1,
    decodeDigits(text, rest + 2, 2),
    decodeDigits(text, rest + 4, 2),
    decodeDigits(text, rest + 6, 2),
    decodeDigits(text, rest + 8, 2),
  );
  return new Date(millis);
}

/** Reads the fields above from a DER certificate. Throws DerError on malformed input. */
export function readCertificateFields(certDer: Uint8Array): CertificateFields {
  const certificate = expectElement(certDer, 0, Tag.sequence, "Certificate");
  const tbs = expectElement(certDer, certificate.contentStart, Tag.sequence, "TBSCertificate", certificate.end);
  const fields = children(certDer, tbs);
  // The version field [0] is optional (absent means v1); the rest are positional.
  const base = fields[0]?.tag === contextTag(0, true) ? 1 : 0;
  if (fields.length < base + 6) throw new DerError("TBSCertificate has too few fields");
  const validity = children(certDer, fields[base + 3]);
  if (validity.length !== 2) throw new DerError("Validity must have two times");
  const subject = fields[base + 4];
  const spki = fields[base + 5];
  if (subject.tag !== Tag.sequence || spki.tag !== Tag.sequence) throw new DerError("subject or subjectPublicKeyInfo is not a SEQUENCE");

  let keyIdentifier: Buffer | undefined;
  const extensionsWrapper = fields.slice(base + 6).find((field) => field.tag === contextTag(3, true));
  if (extensionsWrapper !== undefined) {
    const extensions = expectElement(certDer, extensionsWrapper.contentStart, Tag.sequence, "Extensions", extensionsWrapper.end);
    for (const extension of children(certDer, extensions)) {
      const parts = children(certDer, extension);
      if (parts.length < 2 || !Buffer.from(encodingOf(certDer, parts[0])).equals(OID_SUBJECT_KEY_IDENTIFIER)) continue;
      const value = parts[parts.length - 1];
      const inner = expectElement(certDer, value.contentStart, Tag.octetString, "SubjectKeyIdentifier", value.end);
      keyIdentifier = Buffer.from(contentOf(certDer, inner));
    }
  }
  if (keyIdentifier === undefined) {
    const spkiParts = children(certDer, spki);
    const bits = spkiParts[1];
    if (bits === undefined || bits.tag !== Tag.bitString) throw new DerError("subjectPublicKey is not a BIT STRING");
    keyIdentifier = createHash("sha1").update(certDer.subarray(bits.contentStart + 1, bits.end)).digest();
  }

  return {
    subjectNameDer: Buffer.from(encodingOf(certDer, subject)),
    subjectPublicKeyInfoDer: Buffer.from(encodingOf(certDer, spki)),
    notBefore: decodeX509Time(certDer, validity[0]),
    notAfter: decodeX509Time(certDer, validity[1]),
    keyIdentifier,
  };
}

/** Checks that `der` is exactly one DER element with the given outer tag. */
export function isSingleElement(der: Uint8Array, tag: number): boolean {
  try {
    const element = readElement(der, 0);
    return element.tag === tag && element.end === der.length;
  } catch (err: unknown) {
    if (err instanceof DerError) return false;
    throw err;
  }
}
