/** The `sinks:` list of the audit service configuration. */
import { z } from "zod";
import { hostPort } from "../../core/config.js";

export const SINK_TYPES = ["syslog-tcp", "syslog-tls", "cef-tcp", "cef-tls", "ocsf-file", "jsonl-file"] as const;
export type SinkType = (typeof SINK_TYPES)[number];

export const DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024;

export const sinkConfigSchema = z
  .strictObject({
    /** Unique name; also names the cursor file `<data_dir>/export/<name>.cursor`. */
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "use 1 to 63 lowercase letters, digits, '-' or '_'"),
    type: z.enum(SINK_TYPES),
    /** host:port of the receiver, for the tcp and tls types. */
    address: hostPort.optional(),
    /** PEM CA bundle that signed the receiver's certificate (tls types); default the system CAs. */
    tls_ca_file: z.string().min(1).optional(),
    /** PEM client certificate and key, when the receiver requires client authentication. */
    tls_cert_file: z.string().min(1).optional(),
    tls_key_file: z.string().min(1).optional(),
    /** Name checked in the receiver's certificate; default the address host. */
    tls_server_name: z.string().min(1).optional(),
    /** Output file, for the file types. */
    path: z.string().min(1).optional(),
    /** A file sink rotates its file once it reaches this size, in bytes. */
    rotate_bytes: z.number().int().min(4096).default(DEFAULT_ROTATE_BYTES),
    /** Rotated files a file sink keeps. */
    keep_files: z.number().int().min(1).default(10),
    /** Syslog HOSTNAME; default the machine's host name. */
    hostname: z.string().regex(/^[\x21-\x7e]{1,255}$/).optional(),
    app_name: z.string().regex(/^[\x21-\x7e]{1,48}$/).default("ewii-audit"),
    /** Syslog facility, 0 to 23; default 13 (log audit). */
    facility: z.number().int().min(0).max(23).default(13),
    /** SD-ID of the syslog structured data element with the sequence and hashes. */
    sd_id: z.string().regex(/^[\x21-\x7e]{1,32}$/).refine((value) => !/[= \]"]/.test(value), "an SD-ID has no '=', ' ', ']' or '\"'").default("ewii@32473"),
    /** Entries sent per write. */
    batch_entries: z.number().int().min(1).max(10_000).default(1000),
    /** First retry delay after a failure, in milliseconds; it doubles up to backoff_max_ms, with full jitter. */
    backoff_initial_ms: z.number().int().min(1).default(500),
    backoff_max_ms: z.number().int().min(1).default(30_000),
    /**
     * Stream sinks count data as delivered once the connection stayed up
     * this long after the write, in milliseconds; data written later than
     * that before a disconnect is sent again.
     */
    confirm_after_ms: z.number().int().min(0).default(2000),
    /**
     * On a clean stop, the exporter sends the entries still pending for at
     * most this long, in milliseconds, before it closes the sink.
     */
    drain_timeout_ms: z.number().int().min(0).default(5000),
  })
  .superRefine((sink, context) => {
    const isFile = sink.type.endsWith("-file");
    if (isFile && sink.path === undefined) context.addIssue({ code: "custom", path: ["path"], message: `sink ${sink.name}: type ${sink.type} needs a path` });
    if (!isFile && sink.address === undefined) context.addIssue({ code: "custom", path: ["address"], message: `sink ${sink.name}: type ${sink.type} needs an address host:port` });
    if ((sink.tls_cert_file === undefined) !== (sink.tls_key_file === undefined)) {
      context.addIssue({ code: "custom", path: ["tls_key_file"], message: `sink ${sink.name}: set both tls_cert_file and tls_key_file, or neither` });
    }
  });

export type SinkConfig = z.infer<typeof sinkConfigSchema>;

export const sinksConfigSchema = z.array(sinkConfigSchema).superRefine((sinks, context) => {
  const seen = new Set<string>();
  for (const sink of sinks) {
    if (seen.has(sink.name)) context.addIssue({ code: "custom", message: `sink name ${sink.name} appears twice; names must be unique` });
    seen.add(sink.name);
  }
});
