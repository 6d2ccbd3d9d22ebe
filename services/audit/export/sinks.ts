/** Builds one exporter per configured sink and reports their status. */
import { hostname } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../core/log.js";
import type { AuditLog } from "../log.js";
import { SinkExporter } from "./exporter.js";
import type { SinkStatus } from "./exporter.js";
import type { PayloadFormat } from "./payload.js";
import type { SinkConfig, SinkType } from "./sink-config.js";
import { RotatingFileTransport, StreamTransport } from "./transport.js";
import type { SinkTransport } from "./transport.js";

/** Directory under the data directory with one `<sink>.cursor` file per sink. */
export const EXPORT_CURSOR_DIR = "export";
const PRODUCT_VERSION = "0.1.0";
const CONNECT_TIMEOUT_MS = 10_000;
const CLOSE_TIMEOUT_MS = 5000;

const FORMATS: Record<SinkType, PayloadFormat> = {
  "syslog-tcp": "rfc5424",
  "syslog-tls": "rfc5424",
  "cef-tcp": "cef",
  "cef-tls": "cef",
  "ocsf-file": "ocsf",
  "jsonl-file": "jsonl",
};

export interface SinkSetOptions {
  log: AuditLog;
  sinks: readonly SinkConfig[];
  logger: Logger;
  now?: () => Date;
  random?: () => number;
}

export class SinkSet {
  private constructor(private readonly exporters: SinkExporter[]) {}

  /** Starts an exporter for every sink. */
  static async start(options: SinkSetOptions): Promise<SinkSet> {
    const exporters = options.sinks.map((sink) => createExporter(sink, options));
    const set = new SinkSet(exporters);
    for (const exporter of exporters) await exporter.start();
    return set;
  }

  status(): SinkStatus[] {
    return this.exporters.map((exporter) => exporter.status());
  }

  /** Stops every exporter, each persisting its cursor. */
  async stop(): Promise<void> {
    await Promise.all(this.exporters.map((exporter) => exporter.stop()));
  }
}

function createExporter(sink: SinkConfig, options: SinkSetOptions): SinkExporter {
  const format = FORMATS[sink.type];
  return new SinkExporter({
    name: sink.name,
    type: sink.type,
    log: options.log,
    transport: createTransport(sink),
    format,
    payload: {
      logId: options.log.logId,
      hostname: sink.hostname ?? (hostname().replace(/[^\x21-\x7e]/g, "").slice(0, 255) || "-"),
      appName: sink.app_name,
      facility: sink.facility,
      sdId: sink.sd_id,
      productVersion: PRODUCT_VERSION,
    },
    cursorPath: join(options.log.dir, EXPORT_CURSOR_DIR, `${sink.name}.cursor`),
    batchEntries: sink.batch_entries,
    backoffInitialMs: sink.backoff_initial_ms,
    backoffMaxMs: sink.backoff_max_ms,
    confirmAfterMs: sink.confirm_after_ms,
    drainTimeoutMs: sink.drain_timeout_ms,
    logger: options.logger,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.random === undefined ? {} : { random: options.random }),
  });
}

function createTransport(sink: SinkConfig): SinkTransport {
  if (sink.type.endsWith("-file")) {
    return new RotatingFileTransport({ path: sink.path!, rotateBytes: sink.rotate_bytes, keepFiles: sink.keep_files });
  }
  const address = sink.address!;
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  const tls = sink.type.endsWith("-tls")
    ? {
        ...(sink.tls_ca_file === undefined ? {} : { caFile: sink.tls_ca_file }),
        ...(sink.tls_cert_file === undefined ? {} : { certFile: sink.tls_cert_file }),
        ...(sink.tls_key_file === undefined ? {} : { keyFile: sink.tls_key_file }),
        ...(sink.tls_server_name === undefined ? {} : { serverName: sink.tls_server_name }),
      }
    : undefined;
  return new StreamTransport({ host, port: Number(address.slice(colon + 1)), ...(tls === undefined ? {} : { tls }), connectTimeoutMs: CONNECT_TIMEOUT_MS, closeTimeoutMs: CLOSE_TIMEOUT_MS });
}
