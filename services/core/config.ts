import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { EwiiError } from "./errors.js";

/**
 * Loads a service configuration: a YAML file (optional), then environment
 * variables that override single keys, validated by a zod schema that fills
 * the defaults. Every error names the source, the key and the fix.
 */
export interface ConfigSource {
  /** Path of a YAML file; undefined when the service runs on defaults. */
  file?: string;
  /** Maps a top-level config key to the environment variable that sets it. */
  envKeys?: Record<string, string>;
  /** Values set by the caller (for example CLI flags), applied last. */
  overrides?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

export function loadConfig<S extends z.ZodType>(schema: S, source: ConfigSource): z.infer<S> {
  const env = source.env ?? process.env;
  let raw: Record<string, unknown> = {};
  if (source.file !== undefined) raw = readConfigFile(source.file);

  for (const [key, variable] of Object.entries(source.envKeys ?? {})) {
    const value = env[variable];
    if (value !== undefined && value !== "") raw[key] = coerceEnvValue(value);
  }
  for (const [key, value] of Object.entries(source.overrides ?? {})) {
    if (value !== undefined) raw[key] = value;
  }

  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const where = source.file ?? "the built-in defaults";
  const problems = result.error.issues.map((issue) => {
    const key = issue.path.join(".") || "(top level)";
    const variable = source.envKeys?.[String(issue.path[0])];
    const hint = variable === undefined ? "" : ` (or set ${variable})`;
    return `key "${key}" in ${where}${hint}: ${issue.message}`;
  });
  throw new EwiiError("ERR_CONFIG_INVALID", `invalid configuration: ${problems.join("; ")}`);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new EwiiError("ERR_CONFIG_UNREADABLE", `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; check the path and its permissions`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    // The parser's message ends with the offending lines, which may hold a
    // secret such as a database password, so only its first line is kept.
    const summary = (err as Error).message.split("\n")[0].replace(/:$/, "");
    throw new EwiiError("ERR_CONFIG_INVALID", `config file ${file} is not valid YAML: ${summary}; fix the YAML syntax there`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new EwiiError("ERR_CONFIG_INVALID", `config file ${file} must be a YAML mapping of keys to values, found ${Array.isArray(parsed) ? "a list" : typeof parsed}`);
  }
  return parsed as Record<string, unknown>;
}

function coerceEnvValue(value: string): unknown {
  if (/^-?\d+$/.test(value)) return Number(value);
  if (value === "true") return true;
  if (value === "false") return false;
  return value;
}

/** A "host:port" listen or dial address; port 0 asks the OS for a free port. */
export const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected "host:port", for example "127.0.0.1:7443"');

/** A duration in milliseconds. */
export const durationMs = z
  .number({ error: "expected a number of milliseconds, for example 5000" })
  .int({ error: "expected a whole number of milliseconds" })
  .positive({ error: "expected a duration above 0 ms" });
