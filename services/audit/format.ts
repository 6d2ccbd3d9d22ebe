/**
 * One-line rendering of an audit record for `ewii audit tail`:
 *
 *   2026-12-04T21:30:49.850Z #42 query.completed tenant=acme
 *   spiffe://operator.example/service/billing -> spiffe://acme.example/client/site-1
 *   orders/orders_by_customer allow rule=billing-reads-orders@v3 outcome=ok
 *   rows=10 bytes=2048 latency=12ms
 *
 * (one line in practice). Fields at their default are left out.
 */
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";

export function formatRecord(record: AuditRecord): string {
  const parts: string[] = [
    record.time === undefined ? "-" : record.time.toISOString(),
    `#${record.sequence}`,
    record.event,
    `tenant=${record.tenant}`,
    `${record.callerSpiffeId} -> ${record.clientSpiffeId}`,
    `${record.dataset}/${record.queryId}`,
    `${record.decision} rule=${record.rule}@v${record.policyVersion}`,
  ];
  if (record.outcome !== "") parts.push(`outcome=${record.outcome}`);
  if (record.rows !== 0n) parts.push(`rows=${record.rows}`);
  if (record.bytes !== 0n) parts.push(`bytes=${record.bytes}`);
  if (record.latencyMs !== 0) parts.push(`latency=${record.latencyMs}ms`);
  if (record.relayId !== "") parts.push(`relay=${record.relayId}`);
  parts.push(`request=${record.requestId}`);
  // Control characters in hub-supplied text would break the one-line form.
  return parts.join(" ").replace(/[\u0000-\u001f\u007f]/g, "?");
}
