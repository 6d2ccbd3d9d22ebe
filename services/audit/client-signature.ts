import { X509Certificate } from "node:crypto";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import { verifySummarySignature } from "../client/query/summary.js";

/**
 * Checks the client's result signature kept in a `query.completed` record:
 * the signed summary is rebuilt from the record's fields and verified with
 * the public key of the record's client certificate. Certificate validity
 * at verification time does not matter: the hub checked the chain when the
 * result arrived, and old records stay verifiable after the SVID expires.
 */
export function verifyAuditClientSignature(record: AuditRecord): boolean {
  if (record.clientSignature.length === 0 || record.clientCertDer.length === 0) return false;
  let publicKey;
  try {
    publicKey = new X509Certificate(record.clientCertDer).publicKey;
  } catch {
    // An unparsable certificate cannot have verified the result.
    return false;
  }
  return verifySummarySignature(
    {
      requestId: Buffer.from(record.requestId, "hex"),
      sqlSha256: record.sqlSha256,
      paramsSha256: record.paramsSha256,
      rowCount: record.rows,
      byteCount: record.bytes,
      rowsSha256: record.resultSha256,
      status: record.outcome === "" ? "ok" : record.outcome,
      signature: record.clientSignature,
    },
    publicKey,
  );
}
