import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { EwiiError } from "../core/errors.js";
import { durationMs, hostPort, loadConfig } from "../core/config.js";
import { SpiffeId } from "../core/identity/spiffe-id.js";
import { placeholderNames, statementProblems } from "../core/sql/placeholders.js";
import { readQueryProblem } from "../core/sql/read-query.js";

/**
 * Client configuration: the customer's install-time allow-list. It names the
 * only destinations the client dials (the CA and the relays), the hubs it
 * accepts sessions from, the datasets it serves and the exact SQL it may
 * run on each. Relative paths are resolved against the config file's folder.
 */

const MEBIBYTE = 1024 * 1024;

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
export const DEFAULT_DEAD_PEER_TIMEOUT_MS = 15_000;
export const DEFAULT_RECONNECT_INITIAL_MS = 500;
export const DEFAULT_RECONNECT_MAX_MS = 30_000;
export const DEFAULT_MAX_ROWS = 10_000;
export const DEFAULT_MAX_BYTES = 64 * MEBIBYTE;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
/** Hub SPIFFE ID path in the operator trust domain accepted when `allowed_hubs` is absent. */
export const DEFAULT_ALLOWED_HUB_PATH = "/service/hub";

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const PARAM_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Error for a key that a strict object does not define; other issues keep zod's message. */
const strictKeys = {
  error: (issue: { code?: string; keys?: string[] }) =>
    issue.code === "unrecognized_keys" ? `unknown key ${(issue.keys ?? []).map((key) => JSON.stringify(key)).join(", ")}; remove it or correct its spelling` : undefined,
};

const datasetName = z.string().regex(NAME_PATTERN, "dataset names use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 128 characters");
const queryId = z.string().regex(NAME_PATTERN, "query ids use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 128 characters");

export const paramTypeSchema = z.enum(["integer", "real", "text", "boolean"]);
export type ParamType = z.infer<typeof paramTypeSchema>;

const paramSchema = z.strictObject(
  {
    type: paramTypeSchema,
    description: z.string().optional(),
    /** false lets a request leave the parameter out or send NULL; it is then bound as NULL. */
    required: z.boolean().default(true),
  },
  strictKeys,
);

const querySchema = z.strictObject({
  sql: z.string().trim().min(1, "sql must contain the approved statement"),
  params: z.record(z.string().regex(PARAM_NAME_PATTERN, "parameter names are SQL identifiers: a letter or '_', then letters, digits or '_'"), paramSchema).default({}),
  max_rows: z.number().int().positive("max_rows must be at least 1; remove it to use the dataset's max_rows").optional(),
  description: z.string().optional(),
}, strictKeys);
export type QueryConfig = z.infer<typeof querySchema>;

const queriesSchema = z.record(queryId, querySchema);

/** Top level of a `queries_file`: the same `queries` map as inside a dataset. */
const queriesFileSchema = z.strictObject({ queries: queriesSchema }, strictKeys);

const datasetCommon = {
  max_rows: z.number().int().positive(`max_rows must be at least 1; remove it for the default of ${DEFAULT_MAX_ROWS} rows`).default(DEFAULT_MAX_ROWS),
  max_bytes: z.number().int().positive(`max_bytes must be at least 1; remove it for the default of ${DEFAULT_MAX_BYTES} bytes`).default(DEFAULT_MAX_BYTES),
  statement_timeout_ms: durationMs.default(DEFAULT_STATEMENT_TIMEOUT_MS),
  queries: queriesSchema.default({}),
  queries_file: z.string().min(1).optional(),
};

const sqliteDatasetSchema = z.strictObject({
  engine: z.literal("sqlite"),
  path: z.string({ error: "path must name the SQLite database file, absolute or relative to the config file's folder" }).min(1, "path must name the SQLite database file"),
  ...datasetCommon,
}, strictKeys);

const postgresDatasetSchema = z.strictObject({
  engine: z.literal("postgres"),
  url: z
    .string({ error: 'url must be a PostgreSQL connection URL such as "postgres://reader@db.internal:5432/sales"' })
    .regex(/^postgres(ql)?:\/\//, 'url must start with "postgres://" or "postgresql://"')
    .refine((url) => !postgresUrlHasPassword(url), {
      message: "url must not contain a password, because the config file is meant to be read by reviewers; remove it and set PGPASSWORD in the client's environment or use a ~/.pgpass file",
    }),
  ...datasetCommon,
}, strictKeys);

const datasetSchema = z.discriminatedUnion("engine", [sqliteDatasetSchema, postgresDatasetSchema], {
  error: 'engine must be "sqlite" (with path) or "postgres" (with url)',
});

const allowedHubEntry = z.string().refine(isAllowedHubEntry, {
  message: 'expected a SPIFFE ID ("spiffe://operator.example/service/hub"), a path ("/service/hub") or a path prefix ending in "/" ("/service/")',
});

export const clientConfigSchema = z
  .strictObject({
    identity_dir: z.string().min(1, "identity_dir must name the folder where enrollment wrote svid.pem, key.pem and the bundle files"),
    ca: hostPort,
    relays: z.array(hostPort).min(1, "relays must list at least one relay as host:port"),
    allowed_hubs: z.array(allowedHubEntry).min(1, "allowed_hubs must list at least one hub SPIFFE ID or path").default([DEFAULT_ALLOWED_HUB_PATH]),
    heartbeat_interval_ms: durationMs.default(DEFAULT_HEARTBEAT_INTERVAL_MS),
    dead_peer_timeout_ms: durationMs.default(DEFAULT_DEAD_PEER_TIMEOUT_MS),
    reconnect: z
      .strictObject({
        initial_ms: durationMs.default(DEFAULT_RECONNECT_INITIAL_MS),
        max_ms: durationMs.default(DEFAULT_RECONNECT_MAX_MS),
      }, strictKeys)
      .refine((r) => r.max_ms >= r.initial_ms, { message: "reconnect.max_ms must be at least reconnect.initial_ms" })
      .default({ initial_ms: DEFAULT_RECONNECT_INITIAL_MS, max_ms: DEFAULT_RECONNECT_MAX_MS }),
    datasets: z.record(datasetName, datasetSchema).refine((d) => Object.keys(d).length > 0, { message: "datasets must configure at least one dataset" }),
  }, strictKeys)
  .refine((c) => c.dead_peer_timeout_ms > c.heartbeat_interval_ms, {
    message: "dead_peer_timeout_ms must be larger than heartbeat_interval_ms, or every peer looks dead between two heartbeats",
    path: ["dead_peer_timeout_ms"],
  });

export type ClientConfig = z.infer<typeof clientConfigSchema>;
export type DatasetConfig = ClientConfig["datasets"][string];

/** Maps top-level keys to the environment variables that override them. */
export const CLIENT_ENV_KEYS: Record<string, string> = {
  identity_dir: "EWII_CLIENT_IDENTITY_DIR",
  ca: "EWII_CLIENT_CA",
};

/**
 * Loads and validates the client configuration file, merges each dataset's
 * `queries_file` into its `queries`, resolves relative paths against the
 * file's folder and checks that every query's placeholders match its
 * declared parameters. Throws ERR_CONFIG_INVALID naming the key and the fix.
 */
export function loadClientConfig(file: string, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const config = loadConfig(clientConfigSchema, { file, envKeys: CLIENT_ENV_KEYS, env });
  return finishClientConfig(config, dirname(resolve(file)), file);
}

/**
 * Completes an already parsed configuration (see `loadClientConfig`);
 * `baseDir` resolves relative paths and `source` names the origin in errors.
 */
export function finishClientConfig(config: ClientConfig, baseDir: string, source: string): ClientConfig {
  const datasets: Record<string, DatasetConfig> = {};
  for (const [name, dataset] of Object.entries(config.datasets)) {
    const queries = { ...dataset.queries };
    let queriesFile: string | undefined;
    if (dataset.queries_file !== undefined) {
      queriesFile = resolve(baseDir, dataset.queries_file);
      for (const [id, query] of Object.entries(readQueriesFile(queriesFile, `datasets.${name}.queries_file`, source))) {
        if (id in queries) {
          throw configError(source, `datasets.${name}.queries.${id}`, `query id is defined both inline and in ${queriesFile}; keep one definition`);
        }
        queries[id] = query;
      }
    }
    if (Object.keys(queries).length === 0) {
      throw configError(source, `datasets.${name}.queries`, "the dataset approves no query; add a queries map or a queries_file");
    }
    for (const [id, query] of Object.entries(queries)) {
      checkPlaceholders(query, dataset.engine, `datasets.${name}.queries.${id}`, queriesFile ?? source);
      const problem = readQueryProblem(query.sql, dataset.engine);
      if (problem !== undefined) throw configError(queriesFile ?? source, `datasets.${name}.queries.${id}.sql`, problem);
    }

    if (dataset.engine === "sqlite") {
      const path = resolve(baseDir, dataset.path);
      checkSqliteFile(path, `datasets.${name}.path`, source);
      datasets[name] = { ...dataset, path, queries, queries_file: queriesFile };
    } else {
      datasets[name] = { ...dataset, queries, queries_file: queriesFile };
    }
  }
  return { ...config, identity_dir: resolve(baseDir, config.identity_dir), datasets };
}

/**
 * Returns a predicate accepting the hub SPIFFE IDs that `allowed_hubs`
 * permits. Path entries are relative to the operator trust domain; an
 * entry ending in "/" matches every ID under that path. Throws
 * ERR_CONFIG_INVALID when an absolute entry names another trust domain.
 */
export function allowedHubMatcher(entries: readonly string[], operatorTrustDomain: string): (spiffeId: string) => boolean {
  const rules = entries.map((entry) => {
    const path = entry.startsWith("spiffe://") ? SpiffeId.parse(entry) : SpiffeId.fromParts(operatorTrustDomain, entry.endsWith("/") ? entry.slice(0, -1) : entry);
    if (!path.isMemberOf(operatorTrustDomain)) {
      throw new EwiiError("ERR_CONFIG_INVALID", `allowed_hubs entry "${entry}" is outside the operator trust domain "${operatorTrustDomain}"; list hubs of the operator trust domain only`);
    }
    return { path: path.path, prefix: entry.endsWith("/") };
  });
  return (spiffeId: string): boolean => {
    let id: SpiffeId;
    try {
      id = SpiffeId.parse(spiffeId);
    } catch {
      // An unparsable ID cannot match any entry.
      return false;
    }
    if (!id.isMemberOf(operatorTrustDomain)) return false;
    return rules.some((rule) => {
      if (!rule.prefix) return id.path === rule.path;
      return id.hasPathPrefix(rule.path === "" ? "/" : rule.path);
    });
  };
}

/** Returns whether a PostgreSQL URL carries a password, in its user info or as a `password` query parameter. */
function postgresUrlHasPassword(url: string): boolean {
  const authority = /^postgres(?:ql)?:\/\/([^/?#]*)/.exec(url)?.[1] ?? "";
  const at = authority.lastIndexOf("@");
  if (at !== -1 && authority.slice(0, at).includes(":")) return true;
  const queryStart = url.indexOf("?");
  return queryStart !== -1 && /(?:^|&)password=/i.test(url.slice(queryStart + 1));
}

function isAllowedHubEntry(entry: string): boolean {
  try {
    if (entry.startsWith("spiffe://")) {
      SpiffeId.parse(entry.endsWith("/") ? entry.slice(0, -1) : entry);
      return true;
    }
    if (!entry.startsWith("/")) return false;
    SpiffeId.fromParts("placeholder.example", entry.endsWith("/") ? entry.slice(0, -1) : entry);
    return true;
  } catch {
    // A parse failure means the entry is invalid, which is what this returns.
    return false;
  }
}

function readQueriesFile(file: string, key: string, source: string): Record<string, QueryConfig> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw configError(source, key, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "unknown error"}); check the path and its permissions`, err);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw configError(source, key, `${file} is not valid YAML: ${(err as Error).message}`, err);
  }
  const result = queriesFileSchema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `key "${issue.path.join(".") || "(top level)"}" in ${file}: ${issue.message}`);
    throw new EwiiError("ERR_CONFIG_INVALID", `invalid queries file: ${problems.join("; ")}`);
  }
  return result.data.queries;
}

/**
 * Checks that a SQLite dataset file exists and is readable, so a wrong path
 * fails at start rather than at the first query. The client opens it
 * read-only and never creates it.
 */
function checkSqliteFile(path: string, key: string, source: string): void {
  try {
    if (!statSync(path).isFile()) throw configError(source, key, `${path} is not a regular file; point path at the SQLite database file`);
    accessSync(path, constants.R_OK);
  } catch (err) {
    if (err instanceof EwiiError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
    const fix = code === "ENOENT" ? "check the path, which is resolved against the config file's folder" : "check the file's permissions for the user running the client";
    throw configError(source, key, `cannot read the SQLite file ${path} (${code}); ${fix}`, err);
  }
}

function checkPlaceholders(query: QueryConfig, engine: DatasetConfig["engine"], key: string, source: string): void {
  let used: string[];
  try {
    used = placeholderNames(query.sql);
  } catch (err) {
    throw configError(source, `${key}.sql`, `${(err as Error).message}; close it so placeholders can be found`, err);
  }
  const [problem] = statementProblems(query.sql, engine);
  if (problem !== undefined) throw configError(source, `${key}.sql`, problem);
  const declared = Object.keys(query.params);
  for (const name of used) {
    if (!declared.includes(name)) throw configError(source, `${key}.params`, `the SQL uses :${name} but params does not declare it; add ${name}: { type: ... }`);
  }
  for (const name of declared) {
    if (!used.includes(name)) throw configError(source, `${key}.params.${name}`, `parameter is declared but the SQL has no :${name} placeholder; remove it or use it`);
  }
}

function configError(source: string, key: string, message: string, cause?: unknown): EwiiError {
  return new EwiiError("ERR_CONFIG_INVALID", `invalid configuration: key "${key}" in ${source}: ${message}`, cause === undefined ? {} : { cause });
}
