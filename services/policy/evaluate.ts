import { lookupQuery, type CompiledPolicy, type CompiledQuery, type CompiledRule, type RuleIndex } from "./compile.js";
import { quoteValue } from "./document.js";
import { convertValue, type CheckedParams, type ParamValue } from "./params.js";
import type { RateLimiter } from "./rate-limit.js";
import { DEFAULT_DENY_RULE } from "./references.js";

export type { ParamValue } from "./params.js";

/** Subject of a decision. `principal` is the caller's SPIFFE ID. */
export interface EvaluationRequest {
  principal: string;
  tenant: string;
  dataset: string;
  queryId: string;
  params: Record<string, ParamValue>;
}

/** Outcome of an evaluation; `maxRows` is 0 when denied. */
export interface Decision {
  effect: "allow" | "deny";
  /** Name of the deciding rule, or "default-deny". */
  rule: string;
  policyVersion: number;
  /** Why, in words safe to log and to send to the caller: never a parameter value. */
  reason: string;
  maxRows: number;
  /** Set when the request itself is invalid, so that no rule was consulted (see `RequestErrorCode`). */
  requestError?: RequestErrorCode;
}

/** Codes of a deny that the request's own defects caused, not the rules. */
export const RequestErrorCode = {
  /** The dataset or query is not in the catalog. */
  queryUnknown: "ERR_CATALOG_QUERY_UNKNOWN",
  /** A parameter is undeclared, missing, of the wrong type or outside the catalog's constraints. */
  paramsInvalid: "ERR_PARAMS_INVALID",
  /** The tenant or principal is malformed. */
  requestInvalid: "ERR_REQUEST_INVALID",
} as const;
export type RequestErrorCode = (typeof RequestErrorCode)[keyof typeof RequestErrorCode];

/** A SPIFFE ID as the evaluator accepts it: lowercase trust domain, then non-empty path segments. */
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;
const DOT_SEGMENT = /\/\.\.?(\/|$)/;
const TENANT_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Decides one request against a compiled policy.
 *
 * First the query must exist in the catalog, and its parameters must pass
 * the catalog's type and range checks. Then any matching deny rule denies,
 * because deny overrides allow. Then the first matching allow rule in
 * document order allows, subject to its rate limit. Otherwise the default
 * deny applies. A rule matches when the tenant, principal, dataset and query are
 * in its lists and all its conditions hold.
 *
 * Rate limits are enforced only when `rateLimiter` is given; a token is
 * taken only for a request that would otherwise be allowed.
 */
export function evaluate(policy: CompiledPolicy, request: EvaluationRequest, now: Date, rateLimiter?: RateLimiter): Decision {
  const version = policy.version;
  const query = lookupQuery(policy, request.dataset, request.queryId);
  if (query === undefined) {
    const reason = `query ${quoteValue(request.queryId)} is not in the catalog of dataset ${quoteValue(request.dataset)} in policy version ${version}`;
    return { ...deny(DEFAULT_DENY_RULE, version, reason), requestError: RequestErrorCode.queryUnknown };
  }
  if (!SPIFFE_ID.test(request.principal) || DOT_SEGMENT.test(request.principal)) {
    return { ...deny(DEFAULT_DENY_RULE, version, "the principal is not a valid SPIFFE ID with a path"), requestError: RequestErrorCode.requestInvalid };
  }
  if (!TENANT_NAME.test(request.tenant)) {
    return { ...deny(DEFAULT_DENY_RULE, version, "the tenant is not a valid tenant name (a DNS label such as \"acme\")"), requestError: RequestErrorCode.requestInvalid };
  }
  const checked = checkParams(query, request.params);
  if (typeof checked === "string") return { ...deny(DEFAULT_DENY_RULE, version, checked), requestError: RequestErrorCode.paramsInvalid };

  const principalKeys = principalPatterns(request.principal);
  const denied = firstApplying(query.denyRules, request.tenant, principalKeys, checked, now);
  if (denied.rule !== undefined) return deny(denied.rule.name, version, `denied by rule ${JSON.stringify(denied.rule.name)}`);

  const allowed = firstApplying(query.allowRules, request.tenant, principalKeys, checked, now);
  const rule = allowed.rule;
  if (rule === undefined) {
    const detail = allowed.firstMiss === undefined ? "no allow rule covers this principal, tenant and query" : `no allow rule applies: ${allowed.firstMiss}`;
    return deny(DEFAULT_DENY_RULE, version, detail);
  }
  if (rule.ratePerMinute !== undefined && rateLimiter !== undefined) {
    if (!rateLimiter.tryTake(`${rule.name}\u0000${request.principal}`, rule.ratePerMinute, now.getTime())) {
      return deny(rule.name, version, `the rate limit of rule ${JSON.stringify(rule.name)} (${rule.ratePerMinute} per minute per principal) is exhausted; retry later`);
    }
  }
  const maxRows = rule.maxRows === undefined ? query.maxRows : Math.min(rule.maxRows, query.maxRows);
  return { effect: "allow", rule: rule.name, policyVersion: version, reason: `allowed by rule ${JSON.stringify(rule.name)}`, maxRows };
}

function deny(rule: string, policyVersion: number, reason: string): Decision {
  return { effect: "deny", rule, policyVersion, reason, maxRows: 0 };
}

/** Type-checks request parameters against the catalog; returns the checked values or the reason they fail. */
function checkParams(query: CompiledQuery, params: Record<string, ParamValue>): CheckedParams | string {
  const checked: CheckedParams = new Map();
  for (const name in params) {
    const param = query.params.get(name);
    if (param === undefined) return `parameter ${quoteValue(name)} is not declared by query ${JSON.stringify(query.queryId)}`;
    const value = convertValue(name, param.type, params[name]);
    if (value !== null && typeof value === "object") return value.reason;
    if (value === null) {
      if (param.required) return `parameter ${JSON.stringify(name)} is required and must not be null`;
    } else {
      const reason = param.check(value);
      if (reason !== undefined) return reason;
    }
    checked.set(name, value);
  }
  for (const name of query.requiredParams) {
    if (!checked.has(name)) return `parameter ${JSON.stringify(name)} is required by query ${JSON.stringify(query.queryId)} and is missing`;
  }
  return checked;
}

/**
 * Returns the index keys that can match a principal: the ID itself and each
 * prefix ending in '/' after the trust domain. Prefixes end on a segment
 * boundary, so "spiffe://td/caller/" never matches "spiffe://td/callerx".
 */
function principalPatterns(principal: string): string[] {
  const keys = [principal];
  const pathStart = principal.indexOf("/", "spiffe://".length);
  for (let slash = pathStart; slash !== -1; slash = principal.indexOf("/", slash + 1)) keys.push(principal.slice(0, slash + 1));
  return keys;
}

/**
 * Finds the first rule in document order, among those filed under the
 * tenant (or "*") and one of the principal's patterns, whose conditions
 * hold. Each filed list is already in document order, so the scan of a list
 * stops at its first applying rule or at the best index found so far, and
 * nothing is allocated or sorted per decision.
 */
function firstApplying(index: RuleIndex, tenant: string, principalKeys: readonly string[], params: CheckedParams, now: Date): { rule: CompiledRule | undefined; firstMiss: string | undefined } {
  let best: CompiledRule | undefined;
  let firstMiss: string | undefined;
  for (const tenantKey of [tenant, "*"]) {
    const byPrincipal = index.get(tenantKey);
    if (byPrincipal === undefined) continue;
    for (const key of principalKeys) {
      const rules = byPrincipal.get(key);
      if (rules === undefined) continue;
      for (const rule of rules) {
        if (best !== undefined && rule.index >= best.index) break;
        const miss = rule.checkConditions(params, now);
        if (miss === undefined) {
          best = rule;
          break;
        }
        firstMiss ??= miss;
      }
    }
  }
  return { rule: best, firstMiss };
}
