import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { AuditLog } from "../../services/audit/log.js";
import { silentLogger } from "../../services/core/log.js";
import { SinkSet } from "../../services/audit/export/sinks.js";
import { sinkConfigSchema } from "../../services/audit/export/sink-config.js";
import { openLog, sampleRecord, tempDir } from "../audit/helpers.js";
import type { TempDir } from "../audit/helpers.js";
import { RSYSLOGD, Rsyslog, createTlsFiles, freePort, waitFor } from "./rsyslog.js";
import { parse5424 } from "./syslog-parse.js";

const GTLS_MODULE = "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so";

async function appendRecords(log: AuditLog, count: number, first = 0): Promise<void> {
  for (let i = 0; i < count; i += 10) {
    await log.append(Array.from({ length: Math.min(10, count - i) }, (_, j) => sampleRecord(first + i + j)));
  }
}

/** Sequences carried in the structured data of each message, in arrival order. */
function sequences(messages: string[]): bigint[] {
  return messages.map((message) => BigInt(parse5424(message).sd[0].params.seq));
}

async function waitForHead(rsyslog: Rsyslog, log: AuditLog): Promise<void> {
  await waitFor(async () => new Set(sequences(await rsyslog.messages())).size >= Number(log.head.sequence), `sequence ${log.head.sequence} at rsyslog`);
}

describe("syslog export to rsyslog", function () {
  this.timeout(60_000);
  let dir: TempDir;
  let log: AuditLog;
  let rsyslog: Rsyslog;
  let sinks: SinkSet | undefined;

  before(function () {
    if (!existsSync(RSYSLOGD)) this.skip();
  });
  beforeEach(async () => {
    dir = await tempDir();
    log = await openLog(dir.path + "/log", { checkpointEveryRecords: 50 });
  });
  afterEach(async () => {
    await sinks?.stop();
    sinks = undefined;
    await rsyslog?.stop();
    await log.close();
    await dir.remove();
  });

  it("tcp delivers every entry as valid RFC 5424", async () => {
    rsyslog = new Rsyslog(dir.path, await freePort());
    await rsyslog.start();
    await appendRecords(log, 300);
    sinks = await SinkSet.start({ log, sinks: [sinkConfigSchema.parse({ name: "siem", type: "syslog-tcp", address: `127.0.0.1:${rsyslog.port}`, confirm_after_ms: 100 })], logger: silentLogger() });

    await waitForHead(rsyslog, log);
    const messages = await rsyslog.messages();
    const parsed = messages.map(parse5424);

    assert.deepEqual(sequences(messages), Array.from({ length: Number(log.head.sequence) }, (_, i) => BigInt(i + 1)));
    assert.equal(parsed.filter((message) => message.msgId === "checkpoint").length, 6);
    assert.equal(parsed[0].appName, "ewii-audit");
    assert.equal(parsed[0].pri, 13 * 8 + 6);
    assert.equal(JSON.parse(parsed[0].message).sequence, "1");
    assert.equal(parsed[0].sd[0].params.log, log.logId);
  });

  it("tls delivers every entry", async function () {
    if (!existsSync(GTLS_MODULE)) this.skip();
    const tls = createTlsFiles(dir.path);
    rsyslog = new Rsyslog(dir.path, await freePort(), tls);
    await rsyslog.start();
    await appendRecords(log, 120);
    sinks = await SinkSet.start({ log, sinks: [sinkConfigSchema.parse({ name: "siem", type: "syslog-tls", address: `127.0.0.1:${rsyslog.port}`, tls_ca_file: tls.caFile, tls_server_name: "localhost", confirm_after_ms: 100 })], logger: silentLogger() });

    await waitForHead(rsyslog, log);

    assert.deepEqual(sequences(await rsyslog.messages()), Array.from({ length: Number(log.head.sequence) }, (_, i) => BigInt(i + 1)));
  });

  it("outage delays export and loses nothing", async () => {
    rsyslog = new Rsyslog(dir.path, await freePort());
    await rsyslog.start();
    sinks = await SinkSet.start({ log, sinks: [sinkConfigSchema.parse({ name: "siem", type: "syslog-tcp", address: `127.0.0.1:${rsyslog.port}`, backoff_initial_ms: 20, backoff_max_ms: 200, confirm_after_ms: 500 })], logger: silentLogger() });
    await appendRecords(log, 100);
    await waitForHead(rsyslog, log);

    await rsyslog.stop();
    await appendRecords(log, 200, 100);
    await waitFor(async () => sinks!.status()[0].state !== "connected", "the sink to notice the outage");
    const during = sinks.status()[0];
    await rsyslog.start();
    await waitForHead(rsyslog, log);
    const received = sequences(await rsyslog.messages());
    const firstSeen = received.filter((sequence, i) => received.indexOf(sequence) === i);

    assert.notEqual(during.lagEntries, 0n);
    assert.deepEqual(firstSeen, Array.from({ length: Number(log.head.sequence) }, (_, i) => BigInt(i + 1)));
  });

  it("clean restart resumes without duplicates", async () => {
    rsyslog = new Rsyslog(dir.path, await freePort());
    await rsyslog.start();
    const config = [sinkConfigSchema.parse({ name: "siem", type: "syslog-tcp", address: `127.0.0.1:${rsyslog.port}`, confirm_after_ms: 100 })];
    sinks = await SinkSet.start({ log, sinks: config, logger: silentLogger() });
    await appendRecords(log, 80);
    await waitForHead(rsyslog, log);
    await sinks.stop();
    const stopped = sinks.status()[0];

    await appendRecords(log, 80, 80);
    sinks = await SinkSet.start({ log, sinks: config, logger: silentLogger() });
    await waitForHead(rsyslog, log);

    assert.equal(stopped.persistedSequence, stopped.sentSequence);
    assert.deepEqual(sequences(await rsyslog.messages()), Array.from({ length: Number(log.head.sequence) }, (_, i) => BigInt(i + 1)));
  });
});
