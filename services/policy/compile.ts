import { canonicalJson, documentSha256 } from "./document.js";
import { compileParamCondition, compileParamSpec, type CheckedParams, type CompiledParam } from "./params.js";
import type { PolicyDocument, PolicyRule, SqlEngine } from "./schema.js";
import { sqlSha256 } from "./sql-hash.js";
import { compileTimeWindow } from "./time-window.js";

/** A rule ready for evaluation; `index` is its position in the document, which orders allow rules. */
export interface CompiledRule {
  name: string;
  index: number;
  effect: "allow" | "deny";
  /** Returns why the rule does not apply to these parameters at this time, or undefined when it applies. */
  checkConditions: (params: CheckedParams, now: Date) => string | undefined;
  ratePerMinute: number | undefined;
  maxRows: number | undefined;
}

/** Rules of one query, keyed by tenant (or "*") then by principal (an exact ID or a prefix ending in '/'). */
export type RuleIndex = Map<string, Map<string, CompiledRule[]>>;

/** A catalog query ready for evaluation and for building a client request. */
export interface CompiledQuery {
  dataset: string;
  queryId: string;
  maxRows: number;
  params: Map<string, CompiledParam>;
  requiredParams: readonly string[];
  /** SHA-256 of the SQL text per engine, from `sqlSha256`; absent for an engine the query has no text for. */
  sqlSha256: Partial<Record<SqlEngine, string>>;
  denyRules: RuleIndex;
  allowRules: RuleIndex;
}

/** A policy version compiled into per-query indexes. Immutable once built. */
export interface CompiledPolicy {
  version: number;
  document: PolicyDocument;
  documentJson: string;
  documentSha256: string;
  /** Queries keyed by `queryKey(dataset, queryId)`. */
  queries: Map<string, CompiledQuery>;
}

/** Key of a query in `CompiledPolicy.queries`; NUL cannot occur in a dataset name or query id. */
export function queryKey(dataset: string, queryId: string): string {
  return `${dataset}\u0000${queryId}`;
}

/** Returns the compiled catalog query, or undefined when the policy has no such query. */
export function lookupQuery(policy: CompiledPolicy, dataset: string, queryId: string): CompiledQuery | undefined {
  return policy.queries.get(queryKey(dataset, queryId));
}

/**
 * Compiles a validated document (from `parsePolicy`) into indexes so that a
 * decision costs a few map lookups however many rules the document has.
 * Each rule is filed under every catalog query it covers, by tenant and by
 * principal pattern.
 */
export function compilePolicy(document: PolicyDocument, version: number): CompiledPolicy {
  if (!Number.isSafeInteger(version) || version < 1) throw new TypeError(`policy version must be a positive integer, got ${version}`);
  const queries = new Map<string, CompiledQuery>();
  for (const [dataset, definition] of Object.entries(document.catalog)) {
    for (const [queryId, query] of Object.entries(definition.queries)) {
      const params = new Map<string, CompiledParam>();
      for (const [name, spec] of Object.entries(query.params)) params.set(name, compileParamSpec(name, spec));
      const hashes: Partial<Record<SqlEngine, string>> = {};
      if (query.sql.sqlite !== undefined) hashes.sqlite = sqlSha256(query.sql.sqlite);
      if (query.sql.postgres !== undefined) hashes.postgres = sqlSha256(query.sql.postgres);
      queries.set(queryKey(dataset, queryId), {
        dataset,
        queryId,
        maxRows: query.max_rows,
        params,
        requiredParams: [...params.values()].filter((param) => param.required).map((param) => param.name),
        sqlSha256: hashes,
        denyRules: new Map(),
        allowRules: new Map(),
      });
    }
  }

  document.rules.forEach((rule, index) => {
    const compiled = compileRule(rule, index, document);
    for (const query of queries.values()) {
      if (!covers(rule.datasets, query.dataset) || !covers(rule.queries, query.queryId)) continue;
      const target = rule.effect === "deny" ? query.denyRules : query.allowRules;
      for (const tenant of rule.tenants) {
        let byPrincipal = target.get(tenant);
        if (byPrincipal === undefined) {
          byPrincipal = new Map();
          target.set(tenant, byPrincipal);
        }
        for (const principal of rule.principals) {
          const list = byPrincipal.get(principal);
          if (list === undefined) byPrincipal.set(principal, [compiled]);
          else if (!list.includes(compiled)) list.push(compiled);
        }
      }
    }
  });

  return { version, document, documentJson: canonicalJson(document), documentSha256: documentSha256(document), queries };
}

function covers(list: readonly string[], name: string): boolean {
  return list.includes("*") || list.includes(name);
}

function compileRule(rule: PolicyRule, index: number, document: PolicyDocument): CompiledRule {
  const conditions = rule.conditions;
  const checks: Array<(params: CheckedParams, now: Date) => string | undefined> = [];
  const quotedName = JSON.stringify(rule.name);

  const window = conditions?.time_window;
  if (window !== undefined) {
    const isOpen = compileTimeWindow(window);
    const description = `${window.days.join(",")} ${window.start}-${window.end} ${window.timezone}`;
    checks.push((_params, now) => (isOpen(now) ? undefined : `the time window of rule ${quotedName} (${description}) is closed`));
  }
  for (const [name, condition] of Object.entries(conditions?.params ?? {})) {
    const check = compileParamCondition(name, paramType(document, rule, name), condition, rule.name);
    checks.push((params) => check(params));
  }

  return {
    name: rule.name,
    index,
    effect: rule.effect,
    checkConditions: (params, now) => {
      for (const check of checks) {
        const reason = check(params, now);
        if (reason !== undefined) return reason;
      }
      return undefined;
    },
    ratePerMinute: conditions?.rate_limit?.per_minute,
    maxRows: conditions?.max_rows,
  };
}

/** Type of a parameter that a rule constrains; validation made it the same in every query the rule covers. */
function paramType(document: PolicyDocument, rule: PolicyRule, name: string): CompiledParam["type"] {
  for (const [dataset, definition] of Object.entries(document.catalog)) {
    if (!covers(rule.datasets, dataset)) continue;
    for (const [queryId, query] of Object.entries(definition.queries)) {
      const spec = query.params[name];
      if (covers(rule.queries, queryId) && spec !== undefined) return spec.type;
    }
  }
  throw new TypeError(`rule "${rule.name}" constrains parameter "${name}" that no covered query declares; validate the document with parsePolicy first`);
}
