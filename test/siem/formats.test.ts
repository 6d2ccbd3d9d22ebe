import assert from "node:assert/strict";
import { escapeCefExtensionValue, escapeCefHeader, formatCef } from "../../services/audit/export/cef-format.js";
import { toOcsf } from "../../services/audit/export/ocsf-format.js";
import { formatSyslog5424 } from "../../services/audit/export/syslog-format.js";
import { parse5424 } from "./syslog-parse.js";

const RECORD = { kind: "record", sequence: "42", time: "2026-12-04T21:30:00.123Z", event: "query.denied", request_id: "ab12", tenant: "acme", caller_spiffe_id: "spiffe://operator.example/service/billing", client_spiffe_id: "spiffe://acme.example/client/site-1", dataset: "orders", query_id: "by_customer", decision: "deny", rule: "no-export", policy_version: "3", previous_hash: "0".repeat(64), hash: "1".repeat(64) };

describe("cef format", () => {
  it("header escapes backslash and pipe", () => {
    assert.equal(escapeCefHeader("a|b\\c"), "a\\|b\\\\c");
  });

  it("extension escapes backslash, equals and newlines", () => {
    assert.equal(escapeCefExtensionValue("a=b\\c\nd\re\r\nf|g"), "a\\=b\\\\c\\nd\\re\\nf|g");
  });

  it("line has seven header fields", () => {
    const line = formatCef({ deviceVendor: "V|x", deviceProduct: "P", deviceVersion: "1", signatureId: "s", name: "n", severity: 3, extension: [["cs1", "x=y"]] });
    assert.equal(line, "CEF:0|V\\|x|P|1|s|n|3|cs1=x\\=y");
  });

  it("rejects an invalid extension key", () => {
    assert.throws(() => formatCef({ deviceVendor: "V", deviceProduct: "P", deviceVersion: "1", signatureId: "s", name: "n", severity: 3, extension: [["bad key", "x"]] }), TypeError);
  });
});

describe("ocsf format", () => {
  const event = toOcsf(RECORD, { logId: "log1", productVersion: "0.1.0" });
  const metadata = event.metadata as Record<string, unknown>;

  it("is API Activity read", () => {
    assert.equal(event.class_uid, 6003);
    assert.equal(event.category_uid, 6);
    assert.equal(event.activity_id, 2);
    assert.equal(event.type_uid, 600302);
  });

  it("maps time, severity and status", () => {
    assert.equal(event.time, Date.parse(RECORD.time));
    assert.equal(event.severity_id, 3);
    assert.equal(event.status_id, 2);
  });

  it("carries the sequence in metadata", () => {
    assert.equal(metadata.sequence, 42);
    assert.equal(metadata.uid, "log1:42");
  });

  it("maps actor, api and endpoints", () => {
    assert.deepEqual((event.actor as { user: { uid: string } }).user.uid, RECORD.caller_spiffe_id);
    assert.equal((event.api as { operation: string }).operation, "query.denied");
    assert.equal((event.src_endpoint as { uid: string }).uid, RECORD.caller_spiffe_id);
    assert.equal((event.dst_endpoint as { uid: string }).uid, RECORD.client_spiffe_id);
  });

  it("checkpoint is activity other", () => {
    const checkpoint = toOcsf({ kind: "checkpoint", sequence: "50", time: RECORD.time, log_id: "log1", signature: "c2ln" }, { logId: "log1", productVersion: "0.1.0" });
    assert.equal(checkpoint.activity_id, 99);
    assert.equal((checkpoint.unmapped as Record<string, string>).signature, "c2ln");
  });
});

describe("syslog format", () => {
  it("escapes structured data values", () => {
    const text = formatSyslog5424({ facility: 13, severity: 6, time: new Date(RECORD.time), hostname: "h", appName: "a", procId: "", msgId: "m", structuredData: [{ id: "x@32473", params: [["v", 'a"b\\c]d']] }], message: "{}" });
    const parsed = parse5424(text);
    assert.equal(parsed.sd[0].params.v, 'a"b\\c]d');
    assert.equal(parsed.procId, "-");
    assert.equal(parsed.message, "{}");
  });

  it("rejects a hostname with a space", () => {
    assert.throws(() => formatSyslog5424({ facility: 13, severity: 6, time: new Date(), hostname: "a b", appName: "a", procId: "", msgId: "m", structuredData: [], message: "" }), TypeError);
  });
});
