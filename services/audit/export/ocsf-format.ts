/**
 * OCSF 1.3 API Activity events (class_uid 6003, category_uid 6 Application
 * Activity) for audit entries. docs/siem.md lists the mapping field by field.
 *
 * A record is the operator's caller reading a dataset through a client, so
 * the activity is Read (2). Checkpoints are not API calls; they use Other
 * (99) with activity_name "checkpoint" so a SIEM can see the chain's signed
 * heads in the same stream.
 */
import { ENTRY_KIND_CHECKPOINT } from "../entry.js";
import type { StoredEntry } from "../entry.js";

export const OCSF_VERSION = "1.3.0";
export const OCSF_CLASS_API_ACTIVITY = 6003;
export const OCSF_CATEGORY_APPLICATION_ACTIVITY = 6;
const ACTIVITY_READ = 2;
const ACTIVITY_OTHER = 99;
const SEVERITY_INFORMATIONAL = 1;
const SEVERITY_MEDIUM = 3;
const STATUS_SUCCESS = 1;
const STATUS_FAILURE = 2;

/** Stored keys that have an OCSF attribute; the others go to `unmapped`. */
const MAPPED_KEYS = new Set(["kind", "sequence", "time", "event", "request_id", "tenant", "caller_spiffe_id", "caller_serial", "client_spiffe_id", "client_serial", "decision", "rule", "policy_version", "outcome", "query_id", "dataset"]);

export interface OcsfOptions {
  logId: string;
  productVersion: string;
}

/** Maps one stored entry to an OCSF API Activity object. */
export function toOcsf(entry: StoredEntry, options: OcsfOptions): Record<string, unknown> {
  const sequence = Number(entry.sequence);
  const checkpoint = entry.kind === ENTRY_KIND_CHECKPOINT;
  const denied = entry.decision === "deny";
  const failed = denied || entry.event === "query.failed";
  const activityId = checkpoint ? ACTIVITY_OTHER : ACTIVITY_READ;
  const unmapped: Record<string, string | number> = {};
  for (const [key, value] of Object.entries(entry)) if (!MAPPED_KEYS.has(key)) unmapped[key] = value;

  const event: Record<string, unknown> = {
    class_uid: OCSF_CLASS_API_ACTIVITY,
    class_name: "API Activity",
    category_uid: OCSF_CATEGORY_APPLICATION_ACTIVITY,
    category_name: "Application Activity",
    activity_id: activityId,
    activity_name: checkpoint ? "checkpoint" : "Read",
    type_uid: OCSF_CLASS_API_ACTIVITY * 100 + activityId,
    severity_id: denied ? SEVERITY_MEDIUM : SEVERITY_INFORMATIONAL,
    severity: denied ? "Medium" : "Informational",
    time: Date.parse(String(entry.time)),
    metadata: {
      version: OCSF_VERSION,
      product: { name: "Ewii", vendor_name: "Ewii", version: options.productVersion },
      log_name: options.logId,
      uid: `${options.logId}:${entry.sequence}`,
      sequence,
      ...(entry.request_id === undefined ? {} : { correlation_uid: String(entry.request_id) }),
      ...(entry.tenant === undefined ? {} : { tenant_uid: String(entry.tenant) }),
    },
    unmapped,
  };
  if (checkpoint) return event;

  event.status_id = failed ? STATUS_FAILURE : STATUS_SUCCESS;
  event.status = failed ? "Failure" : "Success";
  event.status_detail = String(entry.outcome ?? entry.decision);
  event.message = `${String(entry.event)} ${String(entry.dataset)}/${String(entry.query_id)}: ${String(entry.decision)} by rule ${String(entry.rule)}`;
  event.actor = {
    user: { uid: String(entry.caller_spiffe_id), type_id: 99, type: "Service" },
    authorizations: [{ decision: String(entry.decision), policy: { name: String(entry.rule), version: String(entry.policy_version ?? "0") } }],
  };
  event.api = {
    operation: String(entry.event),
    request: { uid: String(entry.request_id) },
    service: { name: `${String(entry.dataset)}/${String(entry.query_id)}` },
  };
  event.src_endpoint = { uid: String(entry.caller_spiffe_id), ...(entry.caller_serial === undefined ? {} : { svc_name: `serial ${String(entry.caller_serial)}` }) };
  event.dst_endpoint = { uid: String(entry.client_spiffe_id), ...(entry.client_serial === undefined ? {} : { svc_name: `serial ${String(entry.client_serial)}` }) };
  event.resources = [{ name: String(entry.dataset), type: "dataset", uid: String(entry.query_id) }];
  return event;
}
