import type { X509Certificate } from "node:crypto";

/** Formats serial number bytes as lowercase hex without leading zeros ("0" for zero). */
export function serialHexFromBytes(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex").replace(/^0+/, "");
  return hex === "" ? "0" : hex;
}

/**
 * Returns a certificate's serial number as lowercase hex without leading
 * zeros, the form used in logs, audit records and revocation lists.
 */
export function serialHex(cert: X509Certificate): string {
  const hex = cert.serialNumber.toLowerCase().replace(/^0+/, "");
  return hex === "" ? "0" : hex;
}
