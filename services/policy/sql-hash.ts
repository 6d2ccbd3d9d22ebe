import { createHash } from "node:crypto";

/**
 * SQL text hashing shared by the policy service, the hub and the client, so
 * that both sides of a query agree on which catalog text may run.
 *
 * The hash is SHA-256, lowercase hexadecimal, over the UTF-8 bytes of the
 * normalized text. Normalization only removes differences that editors and
 * YAML block styles introduce:
 *   1. every CRLF and lone CR becomes LF;
 *   2. spaces and tabs at the end of each line are removed;
 *   3. whitespace at the end of the whole text is removed (so `|` and `|-`
 *      YAML blocks hash alike).
 * Everything else, including leading indentation, letter case and blank
 * lines inside the text, is hashed as written.
 */
export function normalizeSql(sqlText: string): string {
  return sqlText
    .replace(/\r\n?/g, "\n")
    .replace(/[ \t]+$/gm, "")
    .trimEnd();
}

/** Returns the SHA-256 of the normalized SQL text as lowercase hexadecimal. */
export function sqlSha256(sqlText: string): string {
  return createHash("sha256").update(normalizeSql(sqlText), "utf8").digest("hex");
}
