import { createHash } from "node:crypto";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { policyInvalid } from "./errors.js";
import { checkReferences, type Problem } from "./references.js";
import { policyDocumentSchema, type PolicyDocument } from "./schema.js";

export type { PolicyDocument } from "./schema.js";

/** Largest policy document accepted, in bytes of UTF-8 text. */
export const MAX_POLICY_BYTES = 4 * 1024 * 1024;

/** Most problems listed in one error; the rest are counted. */
const MAX_LISTED_PROBLEMS = 20;

/** Most YAML alias expansions, which bounds the memory an alias bomb can take. */
const MAX_YAML_ALIASES = 100;

/**
 * Parses and validates a YAML policy document. Every problem found is listed
 * in one ERR_POLICY_INVALID error, each naming the document, the field path
 * (for example `rules[2].principals[0]`) and the fix.
 */
export function parsePolicy(yamlText: string, sourceName: string): PolicyDocument {
  if (Buffer.byteLength(yamlText, "utf8") > MAX_POLICY_BYTES) {
    throw policyInvalid(`${sourceName}: the document is larger than ${MAX_POLICY_BYTES} bytes; split the catalog or remove unused queries`);
  }
  const yaml = parseDocument(yamlText, { uniqueKeys: true, prettyErrors: true });
  if (yaml.errors.length > 0) {
    const first = yaml.errors[0];
    throw policyInvalid(`${sourceName}: not valid YAML: ${first.message.split("\n")[0]}; fix the syntax at that line`, first);
  }
  let raw: unknown;
  try {
    raw = yaml.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    throw policyInvalid(`${sourceName}: the YAML could not be read: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  return validatePolicyObject(raw, sourceName);
}

/** Parses and validates a policy document in JSON, such as the canonical form from a snapshot. */
export function parsePolicyJson(jsonText: string, sourceName: string): PolicyDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(jsonText);
  } catch (err) {
    throw policyInvalid(`${sourceName}: not valid JSON: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  return validatePolicyObject(raw, sourceName);
}

/** Validates a parsed document (plain data) against the schema and the cross-references. */
export function validatePolicyObject(raw: unknown, sourceName: string): PolicyDocument {
  if (raw === null || raw === undefined || typeof raw !== "object" || Array.isArray(raw)) {
    throw policyInvalid(`${sourceName}: the document must be a mapping with the keys version, operator_trust_domain, catalog and rules`);
  }
  const result = policyDocumentSchema.safeParse(raw);
  if (!result.success) {
    throw problemsError(sourceName, result.error.issues.map((issue) => schemaProblem(issue, raw)));
  }
  const problems = checkReferences(result.data);
  if (problems.length > 0) throw problemsError(sourceName, problems);
  return result.data;
}

/**
 * Serializes a validated document as canonical JSON: object keys sorted by
 * UTF-16 code units at every level, no whitespace, defaults filled in.
 * Equal documents give equal text whatever their YAML layout.
 */
export function canonicalJson(document: PolicyDocument): string {
  return JSON.stringify(sortKeys(document));
}

/** Returns the SHA-256 of the canonical JSON form, lowercase hexadecimal. */
export function documentSha256(document: PolicyDocument): string {
  return createHash("sha256").update(canonicalJson(document), "utf8").digest("hex");
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const child = (value as Record<string, unknown>)[key];
      if (child !== undefined) sorted[key] = sortKeys(child);
    }
    return sorted;
  }
  return value;
}

function problemsError(sourceName: string, problems: Problem[]): Error {
  const lines = problems.slice(0, MAX_LISTED_PROBLEMS).map((problem) => `${sourceName}: ${formatPath(problem.path)}: ${problem.message}`);
  if (problems.length > MAX_LISTED_PROBLEMS) lines.push(`${sourceName}: ${problems.length - MAX_LISTED_PROBLEMS} more problems not listed`);
  return policyInvalid(lines.join("\n"));
}

/** Formats a field path the way a reader finds it in YAML: `catalog.chinook.queries.q1.sql`, `rules[2].principals[0]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(document)";
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else if (typeof part === "string" && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(part)) text += text === "" ? part : `.${part}`;
    else text += `[${JSON.stringify(String(part))}]`;
  }
  return text;
}

function schemaProblem(issue: z.core.$ZodIssue, raw: unknown): Problem {
  const path = issue.path;
  switch (issue.code) {
    case "invalid_type":
      if (valueAt(raw, path) === undefined) return { path, message: `is missing; add it (expected ${issue.expected})` };
      return { path, message: `expected ${issue.expected}, found ${describe(valueAt(raw, path))}` };
    case "unrecognized_keys":
      return { path, message: `unknown key ${issue.keys.map((key) => JSON.stringify(key)).join(", ")}; remove it or correct its spelling` };
    case "invalid_value":
      if (valueAt(raw, path) === undefined) return { path, message: `is missing; add it (one of ${issue.values.map((value) => JSON.stringify(value)).join(", ")})` };
      return { path, message: `expected one of ${issue.values.map((value) => JSON.stringify(value)).join(", ")}` };
    case "too_small":
      if (issue.origin === "array") return { path, message: `needs at least ${String(issue.minimum)} entries` };
      return { path, message: `must be at least ${String(issue.minimum)}` };
    case "too_big":
      return { path, message: `must be at most ${String(issue.maximum)}` };
    case "invalid_format":
    case "custom":
      return { path, message: `${describe(valueAt(raw, path))} is invalid: ${issue.message}` };
    case "invalid_key":
      return { path, message: `invalid key: ${issue.issues.map((inner) => inner.message).join(", ")}` };
    default:
      return { path, message: issue.message };
  }
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const part of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

/** Maximum length of a document value quoted in an error message, in characters. */
const MAX_QUOTED_CHARS = 80;

/** Quotes a document value for an error message: policy documents hold no secrets, but values can be long. */
export function quoteValue(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  const truncated = text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}...(${text.length} chars)` : text;
  return typeof value === "string" ? JSON.stringify(truncated) : truncated;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${quoteValue(value)}`;
}
