import Table from "cli-table3";

/** A value of a table cell; null is SQL NULL and undefined an absent field. */
export type CellValue = string | number | bigint | boolean | null | undefined;

const NAMED_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** C0 controls, DEL, C1 controls, and the Unicode bidirectional overrides and isolates, which reorder the text a terminal shows. */
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes text from customer data safe to print to a terminal. Each control
 * character becomes a visible escape (`\n`, `\t`, `\r`, `\x1b`, `\u202e`), so
 * rows cannot move the cursor, clear the screen, set the window title or
 * break the table layout. Backslashes are printed unchanged.
 */
export function escapeControlCharacters(text: string): string {
  return text.replace(CONTROL_CHARACTERS, (char) => {
    const named = NAMED_ESCAPES[char];
    if (named !== undefined) return named;
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Returns true when stdout is a terminal and the NO_COLOR environment variable is unset. */
export function stdoutSupportsColor(): boolean {
  return process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
}

/**
 * Renders one cell: NULL for null (dimmed with `color`, so that it differs
 * from the string "NULL"), empty for undefined, and other values with
 * their control characters escaped.
 */
export function cellText(value: CellValue, options: { color: boolean } = { color: false }): string {
  if (value === null) return options.color ? "\u001b[2mNULL\u001b[22m" : "NULL";
  if (value === undefined) return "";
  return escapeControlCharacters(String(value));
}

/** Formats a row count for people: "1 row", "0 rows", "24 rows". */
export function rowCountText(count: number | bigint): string {
  return `${count} ${count === 1 || count === 1n ? "row" : "rows"}`;
}

/** Formats rows as a table with one line per row and a line under the header. */
export function formatTable(headers: string[], rows: CellValue[][], options: { color: boolean } = { color: false }): string {
  // compact drops the separator line between rows and keeps the one under the header.
  const table = new Table({ head: headers.map(escapeControlCharacters), style: { head: [], border: [], compact: true } });
  for (const row of rows) table.push(row.map((cell) => cellText(cell, options)));
  return table.toString();
}

/** Prints rows as a table for people, or as JSON for scripts. */
export function printTable(headers: string[], rows: CellValue[][], options: { json?: boolean; jsonValue?: unknown } = {}): void {
  if (options.json === true) {
    process.stdout.write(JSON.stringify(options.jsonValue ?? rows.map((row) => Object.fromEntries(headers.map((h, i) => [h, row[i]]))), jsonReplacer, 2) + "\n");
    return;
  }
  process.stdout.write(formatTable(headers, rows, { color: stdoutSupportsColor() }) + "\n");
}

/** Prints one object as JSON or as "key: value" lines. */
export function printObject(value: Record<string, unknown>, options: { json?: boolean } = {}): void {
  if (options.json === true) {
    process.stdout.write(JSON.stringify(value, jsonReplacer, 2) + "\n");
    return;
  }
  const width = Math.max(...Object.keys(value).map((key) => key.length));
  for (const [key, field] of Object.entries(value)) {
    const text = field instanceof Date ? field.toISOString() : Array.isArray(field) ? field.join(", ") : String(field ?? "");
    process.stdout.write(`${key.padEnd(width)}  ${escapeControlCharacters(text)}\n`);
  }
}

/** JSON replacer for bigint, Date and byte values. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  if (value !== null && typeof value === "object" && (value as { type?: unknown }).type === "Buffer" && Array.isArray((value as { data?: unknown }).data)) {
    return Buffer.from((value as { data: number[] }).data).toString("hex");
  }
  return value;
}
