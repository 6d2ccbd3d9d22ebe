/**
 * Named placeholders in catalog SQL.
 *
 * Catalog SQL uses `:name` placeholders on every engine. A placeholder is a
 * colon followed by a letter or underscore, then letters, digits or
 * underscores, found outside of:
 *   - string literals: '...' with '' as an escaped quote, and PostgreSQL
 *     E'...' strings, where a backslash also escapes the next character;
 *   - quoted identifiers: "..." (both engines), [...] and `...` (SQLite);
 *   - PostgreSQL dollar-quoted strings: $$...$$ and $tag$...$tag$;
 *   - comments: -- to the end of the line, and /* ... *\/ (not nested).
 * A double colon (`::type`, the PostgreSQL cast) is never a placeholder.
 *
 * SQLite binds `:name` itself. For PostgreSQL, `toPositional` rewrites each
 * placeholder to `$n`, numbering distinct names in order of first use, so
 * a name used twice binds the same `$n` twice. The rewrite happens once,
 * when the configuration is loaded, never per request.
 *
 * `statementProblems` rejects, at load time, catalog SQL that the drivers
 * would only reject when it runs: other placeholder styles and a second
 * statement.
 */

/** One placeholder occurrence: its name and where it sits in the text. */
export interface PlaceholderToken {
  name: string;
  /** Index of the colon in the SQL text. */
  start: number;
  /** Index just past the last character of the name. */
  end: number;
}

/** SQL rewritten for a driver that binds positional `$n` parameters. */
export interface PositionalSql {
  text: string;
  /** Parameter names in `$1`, `$2`, ... order. */
  names: string[];
}

const NAME_START = /[A-Za-z_]/;
const NAME_PART = /[A-Za-z0-9_]/;
const DOLLAR_TAG = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/;

/**
 * Walks the parts of a SQL text that are code: everything outside string
 * literals, quoted identifiers and comments. `visit` gets the index of each
 * such character and returns the index to go on from. Throws TypeError
 * naming the construct when a literal, identifier or comment is not
 * closed, because a scan of such text cannot be trusted.
 */
// NOTE: block comments are not nested here, as in SQLite. PostgreSQL nests
// them, so `:x` in `/* /* */ :x */` counts as a placeholder there too. The
// loaders reject it when undeclared; a declared one is rewritten inside the
// comment, which PostgreSQL ignores. read-query.ts does nest them.
function scanCode(sql: string, visit: (index: number) => number): void {
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    const next = sql[i + 1];

    if (ch === "'") {
      const escapedByBackslash = i > 0 && /[Ee]/.test(sql[i - 1] ?? "") && !NAME_PART.test(sql[i - 2] ?? "");
      i = skipQuoted(sql, i, "'", escapedByBackslash, "string literal");
    } else if (ch === '"') {
      i = skipQuoted(sql, i, '"', false, "quoted identifier");
    } else if (ch === "`") {
      i = skipQuoted(sql, i, "`", false, "quoted identifier");
    } else if (ch === "[") {
      i = skipUntil(sql, i + 1, "]", "bracket-quoted identifier");
    } else if (ch === "-" && next === "-") {
      const lineEnd = sql.indexOf("\n", i);
      i = lineEnd === -1 ? sql.length : lineEnd + 1;
    } else if (ch === "/" && next === "*") {
      i = skipUntil(sql, i + 2, "*/", "block comment");
    } else if (ch === "$" && !NAME_PART.test(sql[i - 1] ?? "") && DOLLAR_TAG.test(sql.slice(i))) {
      i = skipDollarQuoted(sql, i);
    } else {
      i = visit(i);
    }
  }
}

/**
 * Finds the `:name` placeholders of a SQL text, skipping literals, quoted
 * identifiers and comments. Throws TypeError naming the construct when a
 * literal, identifier or comment is not closed.
 */
export function findPlaceholders(sql: string): PlaceholderToken[] {
  const tokens: PlaceholderToken[] = [];
  scanCode(sql, (i) => {
    const next = sql[i + 1];
    if (sql[i] !== ":") return i + 1;
    if (next === ":") return i + 2;
    if (next === undefined || !NAME_START.test(next)) return i + 1;
    let end = i + 2;
    while (end < sql.length && NAME_PART.test(sql[end] ?? "")) end += 1;
    tokens.push({ name: sql.slice(i + 1, end), start: i, end });
    return end;
  });
  return tokens;
}

/**
 * Returns what makes a catalog SQL text unusable on `engine`, or an empty
 * list: a second statement after a semicolon, or a placeholder style other
 * than `:name` (`$1` on PostgreSQL; `?`, `?1`, `@name` and `$name` on
 * SQLite). PostgreSQL's `?` operators on jsonb are left alone. Throws
 * TypeError like `findPlaceholders` on an unclosed literal or comment.
 */
export function statementProblems(sql: string, engine: "sqlite" | "postgres"): string[] {
  const problems: string[] = [];
  let statementEnd: number | undefined;
  scanCode(sql, (i) => {
    const ch = sql[i];
    const next = sql[i + 1] ?? "";
    const previous = sql[i - 1] ?? "";
    if (statementEnd !== undefined && !/\s/.test(ch)) {
      problems.push(`the text has a second statement after the semicolon at offset ${statementEnd}; approve one statement per query`);
      statementEnd = undefined;
    }
    if (ch === ";") {
      statementEnd ??= i;
      return i + 1;
    }
    const foreign =
      (ch === "$" && /[0-9]/.test(next) && !NAME_PART.test(previous)) ||
      (engine === "sqlite" && ch === "?") ||
      (engine === "sqlite" && (ch === "@" || ch === "$") && NAME_START.test(next) && !NAME_PART.test(previous));
    if (!foreign) return i + 1;
    let end = i + 1;
    while (end < sql.length && NAME_PART.test(sql[end] ?? "")) end += 1;
    problems.push(`${sql.slice(i, end)} at offset ${i} is not a :name placeholder; write placeholders as :name and declare each one under params`);
    return end;
  });
  return problems;
}

/** Returns the distinct placeholder names of a SQL text in order of first use. */
export function placeholderNames(sql: string): string[] {
  return [...new Set(findPlaceholders(sql).map((token) => token.name))];
}

/** Rewrites `:name` placeholders to PostgreSQL's `$1`, `$2`, ... (see the file comment). */
export function toPositional(sql: string): PositionalSql {
  const names: string[] = [];
  let text = "";
  let copiedUpTo = 0;
  for (const token of findPlaceholders(sql)) {
    let position = names.indexOf(token.name);
    if (position === -1) {
      names.push(token.name);
      position = names.length - 1;
    }
    text += `${sql.slice(copiedUpTo, token.start)}$${position + 1}`;
    copiedUpTo = token.end;
  }
  text += sql.slice(copiedUpTo);
  return { text, names };
}

/** Returns the index just past the closing quote; a doubled quote is an escaped quote. */
function skipQuoted(sql: string, open: number, quote: string, backslashEscapes: boolean, construct: string): number {
  let i = open + 1;
  while (i < sql.length) {
    const ch = sql[i];
    if (backslashEscapes && ch === "\\") {
      i += 2;
    } else if (ch === quote && sql[i + 1] === quote) {
      i += 2;
    } else if (ch === quote) {
      return i + 1;
    } else {
      i += 1;
    }
  }
  throw new TypeError(`unterminated ${construct} starting at offset ${open}`);
}

function skipUntil(sql: string, from: number, closer: string, construct: string): number {
  const close = sql.indexOf(closer, from);
  if (close === -1) throw new TypeError(`unterminated ${construct} starting at offset ${from - 1}`);
  return close + closer.length;
}

/** Skips a PostgreSQL dollar-quoted string that starts with a `$tag$` or `$$` at `open`. */
function skipDollarQuoted(sql: string, open: number): number {
  const tag = DOLLAR_TAG.exec(sql.slice(open))?.[0] ?? "$$";
  return skipUntil(sql, open + tag.length, tag, `dollar-quoted string ${tag}`);
}
