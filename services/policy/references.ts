import { placeholderNames, statementProblems } from "../core/sql/placeholders.js";
import type { ParamCondition, ParamSpec, PolicyDocument, PolicyRule, QueryDefinition } from "./schema.js";
import { normalizeSql } from "./sql-hash.js";

/** One validation problem: where it is and what to do about it. */
export interface Problem {
  path: readonly PropertyKey[];
  message: string;
}

/** Rule name that decisions carry when no rule matched; documents may not use it. */
export const DEFAULT_DENY_RULE = "default-deny";

/** SPIFFE ID path segment: letters, digits, '.', '-' and '_' (SPIFFE ID specification, section 2.2). */
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * Checks what the schema cannot: SQL text, placeholders, parameter
 * constraints, trust domains, and references from rules to the catalog.
 */
export function checkReferences(document: PolicyDocument): Problem[] {
  const problems: Problem[] = [];
  for (const [dataset, definition] of Object.entries(document.catalog)) {
    for (const [queryId, query] of Object.entries(definition.queries)) {
      checkQuery(["catalog", dataset, "queries", queryId], query, problems);
    }
  }
  const ruleNames = new Map<string, number>();
  document.rules.forEach((rule, index) => {
    const path = ["rules", index];
    const earlier = ruleNames.get(rule.name);
    if (earlier !== undefined) problems.push({ path: [...path, "name"], message: `duplicate rule name ${JSON.stringify(rule.name)}, also used by rules[${earlier}]; give each rule a unique name` });
    else ruleNames.set(rule.name, index);
    if (rule.name === DEFAULT_DENY_RULE) problems.push({ path: [...path, "name"], message: `"${DEFAULT_DENY_RULE}" is reserved for decisions that no rule matched; choose another name` });
    checkRule(path, rule, document, problems);
  });
  return problems;
}

function checkQuery(path: PropertyKey[], query: QueryDefinition, problems: Problem[]): void {
  const engines = (Object.entries(query.sql) as Array<[keyof QueryDefinition["sql"], string | undefined]>).filter(([, text]) => text !== undefined);
  if (engines.length === 0) problems.push({ path: [...path, "sql"], message: "no SQL text; add sql.sqlite, sql.postgres or both" });
  const declared = Object.keys(query.params);

  for (const [engine, text] of engines) {
    if (text === undefined) continue;
    if (normalizeSql(text) === "") problems.push({ path: [...path, "sql", engine], message: "the SQL text is empty; write the query or remove the key" });
    for (const message of statementProblems(text, engine)) problems.push({ path: [...path, "sql", engine], message });
    const used = new Set(placeholderNames(text));
    for (const name of used) {
      if (!declared.includes(name)) problems.push({ path: [...path, "sql", engine], message: `placeholder :${name} has no declared parameter; add params.${name} or correct the placeholder` });
    }
    for (const name of declared) {
      if (!used.has(name)) problems.push({ path: [...path, "params", name], message: `parameter is not used by sql.${engine}; use it as :${name} or remove it` });
    }
  }
  for (const [name, spec] of Object.entries(query.params)) checkParamSpec([...path, "params", name], spec, problems);
}


function checkParamSpec(path: PropertyKey[], spec: ParamSpec, problems: Problem[]): void {
  const numeric = spec.type === "integer" || spec.type === "real";
  for (const key of ["min", "max"] as const) {
    const bound = spec[key];
    if (bound === undefined) continue;
    if (!numeric) problems.push({ path: [...path, key], message: `${key} applies to integer and real parameters only; remove it or use max_length for text` });
    else if (spec.type === "integer" && !Number.isSafeInteger(bound)) problems.push({ path: [...path, key], message: `${bound} is not an integer; an integer parameter needs an integer bound` });
  }
  if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) problems.push({ path: [...path, "min"], message: `min ${spec.min} is greater than max ${spec.max}; swap them` });
  if (spec.max_length !== undefined && spec.type !== "text") problems.push({ path: [...path, "max_length"], message: "max_length applies to text parameters only; remove it" });
  spec.enum?.forEach((value, index) => {
    if (!valueFitsType(value, spec.type)) problems.push({ path: [...path, "enum", index], message: `${JSON.stringify(value)} is not a ${spec.type} value; list values of the parameter's type` });
  });
}

function valueFitsType(value: string | number | boolean, type: ParamSpec["type"]): boolean {
  switch (type) {
    case "integer":
      return typeof value === "number" && Number.isSafeInteger(value);
    case "real":
      return typeof value === "number";
    case "text":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
  }
}

function checkRule(path: PropertyKey[], rule: PolicyRule, document: PolicyDocument, problems: Problem[]): void {
  const domain = document.operator_trust_domain;
  rule.principals.forEach((principal, index) => {
    const problem = principalProblem(principal, domain);
    if (problem !== undefined) problems.push({ path: [...path, "principals", index], message: problem });
  });
  checkWildcardList([...path, "tenants"], rule.tenants, problems);
  checkWildcardList([...path, "datasets"], rule.datasets, problems);
  checkWildcardList([...path, "queries"], rule.queries, problems);

  const datasets = rule.datasets.includes("*") ? Object.keys(document.catalog) : rule.datasets;
  rule.datasets.forEach((dataset, index) => {
    if (dataset !== "*" && document.catalog[dataset] === undefined) {
      problems.push({ path: [...path, "datasets", index], message: `unknown dataset ${JSON.stringify(dataset)}; declare it under catalog or use one of ${listOf(Object.keys(document.catalog))}` });
    }
  });
  const known = datasets.filter((dataset) => document.catalog[dataset] !== undefined);
  rule.queries.forEach((queryId, index) => {
    if (queryId === "*") return;
    if (!known.some((dataset) => document.catalog[dataset].queries[queryId] !== undefined)) {
      problems.push({ path: [...path, "queries", index], message: `unknown query ${JSON.stringify(queryId)} in ${listOf(known)}; declare it in the catalog or correct the id` });
    }
  });

  const conditions = rule.conditions;
  if (conditions === undefined) return;
  if (rule.effect === "deny" && conditions.rate_limit !== undefined) problems.push({ path: [...path, "conditions", "rate_limit"], message: "a rate limit applies to allow rules only; move it to the allow rule it should limit" });
  if (rule.effect === "deny" && conditions.max_rows !== undefined) problems.push({ path: [...path, "conditions", "max_rows"], message: "a row cap applies to allow rules only; remove it from this deny rule" });
  const window = conditions.time_window;
  if (window !== undefined) {
    if (!isTimeZone(window.timezone)) problems.push({ path: [...path, "conditions", "time_window", "timezone"], message: `unknown time zone ${JSON.stringify(window.timezone)}; use an IANA name such as "UTC" or "Europe/Paris"` });
    if (window.start === window.end) problems.push({ path: [...path, "conditions", "time_window", "end"], message: "start and end are equal, so the window is empty; set a later end" });
  }
  const covered = coveredQueries(rule, known, document);
  for (const [name, condition] of Object.entries(conditions.params ?? {})) {
    checkParamCondition([...path, "conditions", "params", name], name, condition, covered, problems);
  }
}

function coveredQueries(rule: PolicyRule, datasets: string[], document: PolicyDocument): Array<{ id: string; query: QueryDefinition }> {
  const result: Array<{ id: string; query: QueryDefinition }> = [];
  for (const dataset of datasets) {
    for (const [queryId, query] of Object.entries(document.catalog[dataset].queries)) {
      if (rule.queries.includes("*") || rule.queries.includes(queryId)) result.push({ id: `${dataset}/${queryId}`, query });
    }
  }
  return result;
}

function checkParamCondition(path: PropertyKey[], name: string, condition: ParamCondition, covered: Array<{ id: string; query: QueryDefinition }>, problems: Problem[]): void {
  const missing = covered.filter((entry) => entry.query.params[name] === undefined).map((entry) => entry.id);
  if (missing.length > 0) {
    problems.push({ path, message: `parameter ${JSON.stringify(name)} is not declared by ${listOf(missing)}; declare it there or narrow the rule's queries to those that take it` });
    return;
  }
  const types = new Set(covered.map((entry) => entry.query.params[name].type));
  if (types.size > 1) {
    problems.push({ path, message: `parameter ${JSON.stringify(name)} has different types (${[...types].join(", ")}) across the rule's queries; split the rule by query` });
    return;
  }
  const [type] = [...types];
  if (type === undefined) return;
  if (condition.equals !== undefined && !valueFitsType(condition.equals, type)) problems.push({ path: [...path, "equals"], message: `${JSON.stringify(condition.equals)} is not a ${type} value` });
  condition.in?.forEach((value, index) => {
    if (!valueFitsType(value, type)) problems.push({ path: [...path, "in", index], message: `${JSON.stringify(value)} is not a ${type} value` });
  });
  const numeric = type === "integer" || type === "real";
  if (!numeric && (condition.min !== undefined || condition.max !== undefined)) problems.push({ path, message: `min and max apply to integer and real parameters; ${JSON.stringify(name)} is ${type}` });
  if (condition.min !== undefined && condition.max !== undefined && condition.min > condition.max) problems.push({ path: [...path, "min"], message: `min ${condition.min} is greater than max ${condition.max}; swap them` });
  if (condition.pattern !== undefined) {
    if (type !== "text") problems.push({ path: [...path, "pattern"], message: `pattern applies to text parameters; ${JSON.stringify(name)} is ${type}` });
    else if (!isRegExp(condition.pattern)) problems.push({ path: [...path, "pattern"], message: `${JSON.stringify(condition.pattern)} is not a valid JavaScript regular expression` });
  }
}

/** Checks one rule principal: an exact SPIFFE ID or a path prefix ending in '/', in the operator trust domain. */
export function principalProblem(principal: string, trustDomain: string): string | undefined {
  const root = `spiffe://${trustDomain}/`;
  const fix = `use an ID under ${root}`;
  if (!principal.startsWith("spiffe://")) return `${JSON.stringify(principal)} is not a SPIFFE ID; ${fix}`;
  if (!principal.startsWith(root)) return `${JSON.stringify(principal)} is not in the operator trust domain ${JSON.stringify(trustDomain)}; ${fix}`;
  const path = principal.slice(root.length);
  // An empty path is the prefix that covers every workload of the domain.
  if (path === "") return undefined;
  const segments = (path.endsWith("/") ? path.slice(0, -1) : path).split("/");
  for (const segment of segments) {
    if (segment === "" || segment === "." || segment === ".." || !PATH_SEGMENT.test(segment)) {
      return `${JSON.stringify(principal)} has an invalid path segment ${JSON.stringify(segment)}; path segments are non-empty, not "." or "..", and use letters, digits, ".", "-" and "_"`;
    }
  }
  return undefined;
}

function checkWildcardList(path: PropertyKey[], values: string[], problems: Problem[]): void {
  if (values.includes("*") && values.length > 1) problems.push({ path, message: 'lists "*" with other entries; use "*" alone or list the names' });
  const seen = new Set<string>();
  values.forEach((value, index) => {
    if (seen.has(value)) problems.push({ path: [...path, index], message: `${JSON.stringify(value)} is listed twice; remove the duplicate` });
    seen.add(value);
  });
}

function listOf(values: string[]): string {
  if (values.length === 0) return "(none)";
  const shown = values.slice(0, 10).map((value) => JSON.stringify(value)).join(", ");
  return values.length > 10 ? `${shown} and ${values.length - 10} more` : shown;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    // RangeError is how Intl reports an unknown time zone.
    return false;
  }
}

function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern, "u");
    return true;
  } catch {
    // SyntaxError is how RegExp reports an invalid pattern.
    return false;
  }
}
