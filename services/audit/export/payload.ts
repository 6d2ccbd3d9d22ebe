/**
 * The payload each sink type sends for one audit entry. Every payload
 * carries the entry's sequence, so a SIEM can drop the duplicates that a
 * crash or a lost connection can cause: syslog in the `ewii@32473`
 * structured data, CEF in `cn1` (label "sequence"), OCSF in
 * `metadata.sequence`, JSON lines in the stored `sequence` field.
 *
 * 32473 is the private enterprise number that RFC 5612 reserves for
 * documentation. NOTE: an operator with its own enterprise number should
 * set `sd_id`, because 32473 is not registered to Ewii.
 */
import { ENTRY_KIND_CHECKPOINT } from "../entry.js";
import type { StoredEntry } from "../entry.js";
import { formatCef } from "./cef-format.js";
import { toOcsf } from "./ocsf-format.js";
import { SyslogSeverity, formatSyslog5424 } from "./syslog-format.js";

export type PayloadFormat = "rfc5424" | "cef" | "ocsf" | "jsonl";

export interface PayloadOptions {
  logId: string;
  hostname: string;
  appName: string;
  facility: number;
  /** SD-ID of the element with the sequence and hashes. */
  sdId: string;
  productVersion: string;
}

/** CEF severities: routine reads, denials, checkpoints. */
const CEF_SEVERITY_ALLOW = 3;
const CEF_SEVERITY_DENY = 6;
const CEF_SEVERITY_CHECKPOINT = 1;

/**
 * Formats an entry. `line` is its stored line without the newline. For
 * syslog and CEF over TCP the result is the message inside the frame; for
 * files it is one line without the newline.
 */
export function formatPayload(format: PayloadFormat, entry: StoredEntry, line: string, options: PayloadOptions): string {
  switch (format) {
    case "jsonl":
      return line;
    case "ocsf":
      return JSON.stringify(toOcsf(entry, options));
    case "rfc5424":
      return syslogMessage(entry, line, options);
    case "cef":
      return syslogMessage(entry, cefLine(entry, options), options);
  }
}

function isCheckpoint(entry: StoredEntry): boolean {
  return entry.kind === ENTRY_KIND_CHECKPOINT;
}

/** An RFC 5424 message whose MSG is `body`: the stored JSON line or a CEF line. */
function syslogMessage(entry: StoredEntry, body: string, options: PayloadOptions): string {
  const checkpoint = isCheckpoint(entry);
  return formatSyslog5424({
    facility: options.facility,
    severity: entry.decision === "deny" ? SyslogSeverity.notice : SyslogSeverity.informational,
    time: new Date(String(entry.time)),
    hostname: options.hostname,
    appName: options.appName,
    procId: "",
    msgId: checkpoint ? "checkpoint" : String(entry.event),
    structuredData: [
      {
        id: options.sdId,
        params: [
          ["log", options.logId],
          ["seq", String(entry.sequence)],
          ["hash", String(entry.hash)],
          ["prev", String(entry.previous_hash)],
        ],
      },
    ],
    message: body,
  });
}

function cefLine(entry: StoredEntry, options: PayloadOptions): string {
  const checkpoint = isCheckpoint(entry);
  const extension: Array<[string, string]> = [
    ["rt", String(Date.parse(String(entry.time)))],
    ["cn1Label", "sequence"],
    ["cn1", String(entry.sequence)],
    ["deviceExternalId", options.logId],
    ["cs5Label", "hash"],
    ["cs5", String(entry.hash)],
    ["cs6Label", "previousHash"],
    ["cs6", String(entry.previous_hash)],
  ];
  const optional = (key: string, value: string | number | undefined): void => {
    if (value !== undefined) extension.push([key, String(value)]);
  };
  if (checkpoint) {
    optional("cs4Label", "signature");
    optional("cs4", entry.signature);
    optional("cs3Label", "keyId");
    optional("cs3", entry.key_id);
  } else {
    optional("externalId", entry.request_id);
    optional("act", entry.decision);
    optional("outcome", entry.outcome);
    optional("suser", entry.caller_spiffe_id);
    optional("duser", entry.client_spiffe_id);
    extension.push(["cs1Label", "tenant"]);
    optional("cs1", entry.tenant);
    extension.push(["cs2Label", "dataset"]);
    optional("cs2", `${String(entry.dataset)}/${String(entry.query_id)}`);
    extension.push(["cs3Label", "rule"]);
    optional("cs3", `${String(entry.rule)}@v${String(entry.policy_version ?? "0")}`);
    optional("cn2Label", entry.rows === undefined ? undefined : "rows");
    optional("cn2", entry.rows);
    optional("cn3Label", entry.latency_ms === undefined ? undefined : "latencyMs");
    optional("cn3", entry.latency_ms);
    optional("out", entry.bytes);
  }
  return formatCef({
    deviceVendor: "Ewii",
    deviceProduct: "Ewii audit",
    deviceVersion: options.productVersion,
    signatureId: checkpoint ? "checkpoint" : String(entry.event),
    name: checkpoint ? "audit checkpoint" : `${String(entry.event)} ${String(entry.decision)}`,
    severity: cefSeverity(checkpoint, entry.decision),
    extension,
  });
}

function cefSeverity(checkpoint: boolean, decision: unknown): number {
  if (checkpoint) return CEF_SEVERITY_CHECKPOINT;
  if (decision === "deny") return CEF_SEVERITY_DENY;
  return CEF_SEVERITY_ALLOW;
}
