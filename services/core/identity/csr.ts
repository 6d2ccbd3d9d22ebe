import { createPublicKey, sign as signData, verify as verifySignature, type KeyObject } from "node:crypto";
import { DerError, Tag, bitString, children, contextTag, encodingOf, expectElement, oid, sequence, smallInteger, tlv } from "./der.js";
import { IdentityErrorCode, csrError } from "./errors.js";
import { ECDSA_WITH_SHA256, P256_SPKI_BYTES, P256_SPKI_PREFIX } from "./x509-encoding.js";

/**
 * PKCS#10 certification requests (RFC 2986). Clients create them over a
 * fresh ECDSA P-256 key. The CA checks the self-signature and then uses
 * nothing from a request but its public key, because the CA decides the
 * SPIFFE ID, validity and extensions.
 */

/** Maximum CSR size accepted, in bytes. A P-256 request without attributes is about 150 bytes. */
export const MAX_CSR_BYTES = 8 * 1024;

/** Signature algorithms accepted on a CSR, by DER-encoded OID, with their digest. */
const ECDSA_DIGESTS = new Map<string, string>([
  [oid("1.2.840.10045.4.3.2").toString("hex"), "sha256"],
  [oid("1.2.840.10045.4.3.3").toString("hex"), "sha384"],
  [oid("1.2.840.10045.4.3.4").toString("hex"), "sha512"],
]);

const VERSION_1 = smallInteger(0);
const EMPTY_ATTRIBUTES = tlv(contextTag(0, true));

/**
 * Creates a DER PKCS#10 request with an empty subject, no attributes and
 * an ecdsa-with-SHA256 self-signature, for `Enroll` and `Renew`.
 */
export function createCsr(keyPair: { privateKey: KeyObject; publicKeySpkiDer: Uint8Array }): Buffer {
  if (keyPair.privateKey.type !== "private" || keyPair.privateKey.asymmetricKeyType !== "ec") {
    throw new TypeError("createCsr needs an ECDSA private key");
  }
  const info = sequence(VERSION_1, sequence(), keyPair.publicKeySpkiDer, EMPTY_ATTRIBUTES);
  return sequence(info, ECDSA_WITH_SHA256, bitString(signData("sha256", info, keyPair.privateKey)));
}

export interface ParsedCsr {
  /** SubjectPublicKeyInfo of the requested key: ECDSA P-256, uncompressed point, DER. */
  publicKeySpkiDer: Buffer;
}

function malformed(detail: string, cause?: unknown): Error {
  return csrError(IdentityErrorCode.csrInvalid, `CSR is not a valid DER PKCS#10 request (${detail}); create it with createCsr or "openssl req -outform DER"`, cause);
}

function loadP256Key(spki: Buffer): { key: KeyObject; spki: Buffer } {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (err: unknown) {
    throw csrError(IdentityErrorCode.csrInvalid, "CSR public key cannot be decoded (for EC keys: the point is not on the curve)", err);
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    const kind = key.asymmetricKeyType === "ec" ? `EC ${key.asymmetricKeyDetails?.namedCurve ?? "unknown curve"}` : String(key.asymmetricKeyType);
    throw csrError(IdentityErrorCode.csrUnsupportedKey, `CSR public key is ${kind}; only ECDSA P-256 (prime256v1) keys are accepted`);
  }
  // A compressed point is re-exported in the uncompressed form that issuance expects.
  const normalized = spki.length === P256_SPKI_BYTES && spki.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX) ? spki : key.export({ type: "spki", format: "der" });
  return { key, spki: normalized };
}

/**
 * Parses a DER PKCS#10 request, checks that its key is ECDSA P-256 and that
 * its self-signature verifies, and returns the public key. Throws
 * ERR_CSR_INVALID, ERR_CSR_UNSUPPORTED_KEY or ERR_CSR_BAD_SIGNATURE
 * (gRPC INVALID_ARGUMENT).
 */
export function parseCsr(der: Uint8Array): ParsedCsr {
  if (der.length === 0) throw malformed("empty input");
  if (der.length > MAX_CSR_BYTES) throw malformed(`${der.length} bytes, more than the ${MAX_CSR_BYTES} byte limit`);
  const input = Buffer.from(der.buffer, der.byteOffset, der.byteLength);

  let info: Buffer;
  let spki: Buffer;
  let digest: string | undefined;
  let signature: Buffer;
  try {
    const request = expectElement(input, 0, Tag.sequence, "CertificationRequest");
    if (request.end !== input.length) throw new DerError(`${input.length - request.end} trailing bytes after the request`);
    const parts = children(input, request);
    if (parts.length !== 3) throw new DerError(`CertificationRequest has ${parts.length} fields, expected 3`);
    const [infoElement, algorithm, signatureElement] = parts;
    if (infoElement.tag !== Tag.sequence || algorithm.tag !== Tag.sequence || signatureElement.tag !== Tag.bitString) {
      throw new DerError("CertificationRequest fields have unexpected types");
    }
    const infoParts = children(input, infoElement);
    if (infoParts.length !== 4) throw new DerError(`CertificationRequestInfo has ${infoParts.length} fields, expected 4`);
    if (!Buffer.from(encodingOf(input, infoParts[0])).equals(VERSION_1)) throw new DerError("version is not v1 (0)");
    if (infoParts[1].tag !== Tag.sequence || infoParts[2].tag !== Tag.sequence || infoParts[3].tag !== contextTag(0, true)) {
      throw new DerError("CertificationRequestInfo fields have unexpected types");
    }
    info = input.subarray(infoElement.start, infoElement.end);
    spki = input.subarray(infoParts[2].start, infoParts[2].end);
    const algorithmParts = children(input, algorithm);
    if (algorithmParts.length === 0 || algorithmParts[0].tag !== Tag.oid) throw new DerError("signature algorithm has no OID");
    // ECDSA identifiers have no parameters (RFC 5758 section 3.2). Any other algorithm is reported after the key check.
    digest = algorithmParts.length === 1 ? ECDSA_DIGESTS.get(Buffer.from(encodingOf(input, algorithmParts[0])).toString("hex")) : undefined;
    if (input[signatureElement.contentStart] !== 0 || signatureElement.end - signatureElement.contentStart < 2) {
      throw new DerError("signature BIT STRING has unused bits or is empty");
    }
    signature = input.subarray(signatureElement.contentStart + 1, signatureElement.end);
  } catch (err: unknown) {
    if (err instanceof DerError) throw malformed(err.message, err);
    throw err;
  }

  const { key, spki: normalized } = loadP256Key(spki);
  if (digest === undefined) {
    throw csrError(IdentityErrorCode.csrInvalid, "CSR signature algorithm is not ecdsa-with-SHA256, SHA384 or SHA512; sign the request with the P-256 key");
  }
  let valid: boolean;
  try {
    valid = verifySignature(digest, info, key, signature);
  } catch (err: unknown) {
    throw csrError(IdentityErrorCode.csrBadSignature, "CSR signature is not a valid ECDSA signature encoding", err);
  }
  if (!valid) throw csrError(IdentityErrorCode.csrBadSignature, "CSR signature does not verify with the CSR public key; the request was altered or signed with another key");
  return { publicKeySpkiDer: Buffer.from(normalized) };
}
