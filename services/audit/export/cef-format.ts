/**
 * ArcSight Common Event Format (CEF) version 0 lines.
 *
 * Escaping follows the ArcSight "Implementing ArcSight CEF" rules: in
 * header fields a backslash and a pipe get a backslash; in extension values
 * a backslash and an equals sign get a backslash, and CR and LF become the
 * two characters "\r" and "\n".
 */

export interface CefEvent {
  deviceVendor: string;
  deviceProduct: string;
  deviceVersion: string;
  signatureId: string;
  name: string;
  /** 0 (lowest) to 10 (highest). */
  severity: number;
  /** Extension keys in order; values are escaped here. */
  extension: Array<[string, string]>;
}

/** Escapes a CEF header field: backslash and pipe. Line breaks become spaces, because a header is one line. */
export function escapeCefHeader(value: string): string {
  return value.replace(/[\\|]/g, (character) => `\\${character}`).replace(/\r\n|[\r\n]/g, " ");
}

/** Escapes a CEF extension value: backslash, equals sign, CR and LF. */
export function escapeCefExtensionValue(value: string): string {
  return value.replace(/\r\n|[\\=\r\n]/g, (match) => {
    if (match === "\r\n" || match === "\n") return "\\n";
    if (match === "\r") return "\\r";
    return `\\${match}`;
  });
}

/** Formats one CEF line without a trailing newline. Throws TypeError for an extension key that CEF cannot carry. */
export function formatCef(event: CefEvent): string {
  if (!Number.isInteger(event.severity) || event.severity < 0 || event.severity > 10) throw new TypeError(`CEF severity ${event.severity} is outside 0..10`);
  const header = ["CEF:0", event.deviceVendor, event.deviceProduct, event.deviceVersion, event.signatureId, event.name].map((field, i) => (i === 0 ? field : escapeCefHeader(field)));
  const extension = event.extension
    .map(([key, value]) => {
      if (!/^[A-Za-z0-9_]+$/.test(key)) throw new TypeError(`CEF extension key ${JSON.stringify(key)} must be letters, digits or "_"`);
      return `${key}=${escapeCefExtensionValue(value)}`;
    })
    .join(" ");
  return `${header.join("|")}|${event.severity}|${extension}`;
}
