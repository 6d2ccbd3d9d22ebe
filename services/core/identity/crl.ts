import { readCertificateFields } from "./certificate-fields.js";
import { contextTag, sequence, smallInteger, tlv, unsignedInteger, x509Time } from "./der.js";
import type { SigningCa } from "./issuer.js";
import {
  ECDSA_WITH_SHA256,
  OID_AUTHORITY_KEY_IDENTIFIER,
  OID_CRL_NUMBER,
  authorityKeyIdentifierValue,
  extension,
  signTbs,
} from "./x509-encoding.js";

/** X.509 v2 certificate revocation lists (RFC 5280 section 5), signed by a tenant CA. */

export interface RevokedSerial {
  /** Serial number as hex, as `serialHex` formats it. */
  serial: string;
  revokedAt: Date;
}

export interface CreateCrlOptions {
  ca: SigningCa;
  revokedSerials: readonly RevokedSerial[];
  thisUpdate: Date;
  nextUpdate: Date;
  /** Monotonically increasing CRL number (RFC 5280 section 5.2.3). */
  crlNumber: number;
}

/** Version field value 1, meaning v2, as RFC 5280 section 5.1.2.1 requires when extensions are present. */
const CRL_VERSION_V2 = smallInteger(1);

function serialBytes(serial: string): Buffer {
  if (!/^[0-9a-fA-F]{1,40}$/.test(serial)) throw new TypeError(`revoked serial must be 1 to 40 hex digits, got ${JSON.stringify(serial)}`);
  return Buffer.from(serial.length % 2 === 0 ? serial : `0${serial}`, "hex");
}

/** Creates a DER CRL that `openssl crl -inform DER -CAfile <ca> -noout` verifies. */
export function createCrl(options: CreateCrlOptions): Buffer {
  if (options.nextUpdate.getTime() <= options.thisUpdate.getTime()) {
    throw new TypeError(`nextUpdate ${options.nextUpdate.toISOString()} must be later than thisUpdate ${options.thisUpdate.toISOString()}`);
  }
  const fields = readCertificateFields(options.ca.certDer);
  const entries = options.revokedSerials.map((entry) => sequence(unsignedInteger(serialBytes(entry.serial)), x509Time(entry.revokedAt)));
  const extensions = sequence(
    extension(OID_AUTHORITY_KEY_IDENTIFIER, false, authorityKeyIdentifierValue(fields.keyIdentifier)),
    extension(OID_CRL_NUMBER, false, smallInteger(options.crlNumber)),
  );
  const parts: Buffer[] = [CRL_VERSION_V2, ECDSA_WITH_SHA256, fields.subjectNameDer, x509Time(options.thisUpdate), x509Time(options.nextUpdate)];
  // RFC 5280 section 5.1.2.6: an empty list is omitted, not encoded as an empty SEQUENCE.
  if (entries.length > 0) parts.push(sequence(...entries));
  parts.push(tlv(contextTag(0, true), extensions));
  return signTbs(sequence(...parts), options.ca.privateKey);
}
