import type { QueryDefinition } from "./schema.js";

/**
 * Parameter placeholder conventions of catalog SQL, shared by the policy
 * validator and the client that binds parameters:
 *   - SQLite text uses named placeholders `:name` (also `@name` or `$name`),
 *     bound by name;
 *   - PostgreSQL text uses positional placeholders `$1`, `$2`, ... where `$n`
 *     is the n-th declared parameter in ascending order of name (see
 *     `postgresParamOrder`), because the canonical document form sorts keys
 *     and so cannot keep the order in which the YAML lists them.
 */

/** Removes string literals, quoted identifiers and comments, which may contain ':' or '$' that are not placeholders. */
function stripLiteralsAndComments(sql: string): string {
  return sql
    .replace(/'(?:[^']|'')*'/g, "''")
    .replace(/"(?:[^"]|"")*"/g, '""')
    .replace(/--[^\n]*/g, "")
    .replace(/\/\*[\s\S]*?\*\//g, "");
}

/** Returns the parameter names that SQLite text refers to with `:name`, `@name` or `$name`. */
export function sqliteParamNames(sql: string): Set<string> {
  const names = new Set<string>();
  for (const match of stripLiteralsAndComments(sql).matchAll(/(?<![:\w])[:@$]([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(match[1]);
  return names;
}

/** Returns the positions that PostgreSQL text refers to with `$n`. */
export function postgresParamPositions(sql: string): Set<number> {
  const positions = new Set<number>();
  for (const match of stripLiteralsAndComments(sql).matchAll(/(?<![\w$])\$(\d+)\b/g)) positions.add(Number(match[1]));
  return positions;
}

/** Returns the parameter names in the order of the PostgreSQL placeholders `$1`, `$2`, ... */
export function postgresParamOrder(query: Pick<QueryDefinition, "params">): string[] {
  return Object.keys(query.params).sort();
}
