import Table from "cli-table3";

/** Prints rows as a table for people, or as JSON for scripts. */
export function printTable(headers: string[], rows: (string | number | bigint | boolean | null | undefined)[][], options: { json?: boolean; jsonValue?: unknown } = {}): void {
  if (options.json === true) {
    process.stdout.write(JSON.stringify(options.jsonValue ?? rows.map((row) => Object.fromEntries(headers.map((h, i) => [h, row[i]]))), jsonReplacer, 2) + "\n");
    return;
  }
  const table = new Table({ head: headers, style: { head: [], border: [] } });
  for (const row of rows) table.push(row.map((cell) => (cell === null || cell === undefined ? "" : String(cell))));
  process.stdout.write(table.toString() + "\n");
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
    process.stdout.write(`${key.padEnd(width)}  ${text}\n`);
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
