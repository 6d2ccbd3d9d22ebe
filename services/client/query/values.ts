import type { Value } from "../../../gen/ewii/tunnel/v1/tunnel.js";

/**
 * Conversions between driver values and the tunnel `Value` oneof.
 *
 * Result values: integers become `int_value` (bigint, sint64), floating
 * point and NUMERIC values become `double_value`, text `string_value`,
 * blobs and bytea `bytes_value`, booleans `bool_value`, NULL
 * `null_value: true`. PostgreSQL NUMERIC arrives as a decimal string and is
 * converted to a double: exact for the two-decimal money columns of the
 * demo data, rounded beyond 15 to 17 significant digits. Other PostgreSQL
 * types (dates, timestamps, JSON, arrays, ...) are sent as their PostgreSQL
 * text form.
 */

/** A value that a SQLite statement binds. */
export type SqliteBindValue = bigint | number | string | Buffer | null;

/** Maps a better-sqlite3 value read with `safeIntegers(true)`. */
export function valueFromSqlite(raw: unknown): Value {
  if (raw === null || raw === undefined) return { nullValue: true };
  if (typeof raw === "bigint") return { intValue: raw };
  if (typeof raw === "number") return { doubleValue: raw };
  if (typeof raw === "string") return { stringValue: raw };
  if (raw instanceof Uint8Array) return { bytesValue: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength) };
  throw new TypeError(`unexpected SQLite value of type ${typeof raw}`);
}

/**
 * Maps a SQLite declared column type to a type name by SQLite's affinity
 * rules (https://www.sqlite.org/datatype3.html, section 3.1). NUMERIC
 * affinity maps to "real" because such columns hold decimal amounts in the
 * demo data and their values are sent as doubles when stored as REAL.
 * Expressions have no declared type and map to "".
 */
export function sqliteColumnType(declared: string | null): string {
  if (declared === null || declared === "") return "";
  const upper = declared.toUpperCase();
  if (upper.includes("INT")) return "integer";
  if (upper.includes("CHAR") || upper.includes("CLOB") || upper.includes("TEXT")) return "text";
  if (upper.includes("BLOB")) return "blob";
  return "real";
}

/** Converts a validated parameter to a SQLite binding; booleans bind as 0 or 1. */
export function sqliteBindValue(value: Value): SqliteBindValue {
  if (value.intValue !== undefined) return value.intValue;
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue ? 1n : 0n;
  if (value.bytesValue !== undefined) return value.bytesValue;
  return null;
}

/** PostgreSQL type OIDs (pg_type.oid) that get a non-text mapping. */
export const PgOid = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  float4: 700,
  float8: 701,
  numeric: 1700,
} as const;

const PG_INTEGER_OIDS: ReadonlySet<number> = new Set([PgOid.int2, PgOid.int4, PgOid.int8, PgOid.oid]);
const PG_REAL_OIDS: ReadonlySet<number> = new Set([PgOid.float4, PgOid.float8, PgOid.numeric]);

/** Maps a PostgreSQL column type OID to a type name; unlisted types are "text". */
export function pgColumnType(oid: number): string {
  if (PG_INTEGER_OIDS.has(oid)) return "integer";
  if (PG_REAL_OIDS.has(oid)) return "real";
  if (oid === PgOid.bool) return "boolean";
  if (oid === PgOid.bytea) return "blob";
  return "text";
}

/**
 * Parses a PostgreSQL text-format value of a column type other than bytea
 * (the driver's own parser decodes bytea). Used as the pg type parser, so
 * the driver hands rows over already mapped.
 */
export function parsePgText(oid: number, text: string): bigint | number | boolean | string {
  if (PG_INTEGER_OIDS.has(oid)) return BigInt(text);
  if (PG_REAL_OIDS.has(oid)) return Number(text);
  if (oid === PgOid.bool) return text === "t";
  return text;
}

/** Maps a value produced by `parsePgText` (or null) to a tunnel Value. */
export function valueFromPg(raw: unknown): Value {
  if (raw === null || raw === undefined) return { nullValue: true };
  if (typeof raw === "bigint") return { intValue: raw };
  if (typeof raw === "number") return { doubleValue: raw };
  if (typeof raw === "boolean") return { boolValue: raw };
  if (typeof raw === "string") return { stringValue: raw };
  if (Buffer.isBuffer(raw)) return { bytesValue: raw };
  throw new TypeError(`unexpected PostgreSQL value of type ${typeof raw}`);
}

/** Converts a validated parameter to the text pg sends for it; PostgreSQL infers the type from the statement. */
export function pgBindValue(value: Value): string | Buffer | null {
  if (value.intValue !== undefined) return value.intValue.toString(10);
  if (value.doubleValue !== undefined) return Number.isFinite(value.doubleValue) ? String(value.doubleValue) : pgSpecialFloat(value.doubleValue);
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue ? "true" : "false";
  if (value.bytesValue !== undefined) return value.bytesValue;
  return null;
}

function pgSpecialFloat(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  return n > 0 ? "Infinity" : "-Infinity";
}
