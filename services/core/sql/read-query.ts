/**
 * The first-keyword check of approved SQL, shared by the client's config
 * loader and the PostgreSQL executor.
 */

/** First keywords of the statements a dataset may approve: queries that return rows. */
const READ_QUERY_KEYWORDS: ReadonlySet<string> = new Set(["SELECT", "WITH", "VALUES", "TABLE"]);

/**
 * Returns why an approved SQL text is not a read query, or undefined when
 * its first keyword, after whitespace, comments and opening parentheses, is
 * SELECT, WITH, VALUES or TABLE. This rejects writes, DDL, COPY, DO,
 * ATTACH, PRAGMA and transaction control before the client starts. A WITH
 * that modifies data passes here and fails at run time, in PostgreSQL's
 * READ ONLY transaction or by SQLite's read-only statement check.
 */
export function readQueryProblem(sql: string, engine: "sqlite" | "postgres"): string | undefined {
  const keyword = leadingKeyword(sql, engine === "postgres");
  if (keyword !== undefined && READ_QUERY_KEYWORDS.has(keyword)) return undefined;
  const found = keyword === undefined ? "no keyword" : keyword;
  return `the statement starts with ${found}, but the client runs only queries starting with SELECT, WITH, VALUES or TABLE; approve a SELECT instead (for example SELECT * FROM pragma_table_info('t') in place of PRAGMA table_info(t))`;
}

/**
 * Returns the first keyword of a SQL text in upper case, or undefined when
 * none comes before the end or an unclosed comment. PostgreSQL block
 * comments nest and SQLite's do not, so `nestedComments` follows the engine.
 */
function leadingKeyword(sql: string, nestedComments: boolean): string | undefined {
  let i = 0;
  while (i < sql.length) {
    if (/\s|\(/.test(sql[i]!)) {
      i += 1;
    } else if (sql.startsWith("--", i)) {
      const lineEnd = sql.indexOf("\n", i);
      if (lineEnd === -1) return undefined;
      i = lineEnd + 1;
    } else if (sql.startsWith("/*", i)) {
      i = blockCommentEnd(sql, i, nestedComments);
      if (i === -1) return undefined;
    } else {
      return /^[A-Za-z_]+/.exec(sql.slice(i))?.[0].toUpperCase();
    }
  }
  return undefined;
}

/** Returns the index just past the block comment opening at `start`, or -1 when it is not closed. */
function blockCommentEnd(sql: string, start: number, nested: boolean): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith("/*", i) && (nested || depth === 0)) {
      depth += 1;
      i += 2;
    } else if (sql.startsWith("*/", i)) {
      depth -= 1;
      i += 2;
      if (depth === 0) return i;
    } else {
      i += 1;
    }
  }
  return -1;
}
