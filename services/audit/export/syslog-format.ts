/**
 * RFC 5424 syslog messages and RFC 6587 octet-counting frames.
 *
 * No npm formatter fits: the maintained clients (for example syslog-client)
 * write neither structured data nor octet-counted frames, and glossy has
 * not been updated for years. This file is that formatter, tested against
 * a strict RFC 5424 parser and against rsyslog.
 */

/** RFC 5424 section 6.2.1: facility 13 is "log audit". */
export const DEFAULT_SYSLOG_FACILITY = 13;
/** RFC 5424 section 6.2.1 severities used here. */
export const SyslogSeverity = { notice: 5, informational: 6 } as const;
/** RFC 5424 NILVALUE. */
const NIL = "-";

export interface SyslogMessage {
  facility: number;
  severity: number;
  time: Date;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  /** SD-ELEMENTs in order: SD-ID, then its parameters. */
  structuredData: Array<{ id: string; params: Array<[string, string]> }>;
  /** MSG-ANY text; RFC 5424 allows any octets here, so no BOM is written. */
  message: string;
}

/** Formats one RFC 5424 message (section 6). Throws TypeError for a header field outside the ABNF. */
export function formatSyslog5424(message: SyslogMessage): string {
  if (!Number.isInteger(message.facility) || message.facility < 0 || message.facility > 23) throw new TypeError(`syslog facility ${message.facility} is outside 0..23`);
  const pri = message.facility * 8 + message.severity;
  const header = [
    `<${pri}>1`,
    message.time.toISOString(),
    headerField(message.hostname, 255, "hostname"),
    headerField(message.appName, 48, "app name"),
    headerField(message.procId, 128, "proc id"),
    headerField(message.msgId, 32, "msg id"),
  ].join(" ");
  const sd = message.structuredData.length === 0 ? NIL : message.structuredData.map(formatSdElement).join("");
  return message.message === "" ? `${header} ${sd}` : `${header} ${sd} ${message.message}`;
}

/** Frames a message for TCP by octet counting (RFC 6587 section 3.4.1): "LEN SP MSG". */
export function octetCountingFrame(message: string): Buffer {
  const body = Buffer.from(message, "utf8");
  return Buffer.concat([Buffer.from(`${body.length} `, "ascii"), body]);
}

/** Checks a header field: 1 to `maxLength` printable US-ASCII characters (33-126), or NILVALUE when empty. */
function headerField(value: string, maxLength: number, name: string): string {
  if (value === "") return NIL;
  if (value.length > maxLength || !/^[\x21-\x7e]+$/.test(value)) throw new TypeError(`syslog ${name} must be 1 to ${maxLength} printable ASCII characters without spaces`);
  return value;
}

function formatSdElement(element: { id: string; params: Array<[string, string]> }): string {
  const params = element.params.map(([name, value]) => ` ${sdName(name)}="${escapeParamValue(value)}"`).join("");
  return `[${sdName(element.id)}${params}]`;
}

/** SD-NAME (section 6.3.2): 1 to 32 printable ASCII characters except '=', SP, ']' and '"'. */
function sdName(name: string): string {
  if (!/^[\x21-\x7e]{1,32}$/.test(name) || /[= \]"]/.test(name)) throw new TypeError(`syslog SD-NAME ${JSON.stringify(name)} is invalid`);
  return name;
}

/** Escapes a PARAM-VALUE (section 6.3.3): '"', '\' and ']' get a backslash. */
export function escapeParamValue(value: string): string {
  return value.replace(/["\\\]]/g, (character) => `\\${character}`);
}
