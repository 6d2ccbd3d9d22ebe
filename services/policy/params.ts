import type { Value } from "../../gen/ewii/tunnel/v1/tunnel.js";
import type { ParamCondition, ParamSpec, ParamType } from "./schema.js";

/** A request parameter as it travels in protobuf: one field of the `Value` oneof is set. */
export type ParamValue = Value;

/** A parameter value after its type check: integers as bigint, reals as number, null for SQL NULL. */
export type CheckedValue = bigint | number | string | boolean | null;

/** Checked parameters of one request, by name. */
export type CheckedParams = Map<string, CheckedValue>;

/**
 * Returns a reason when a value breaks a constraint, else undefined.
 * Reasons name the parameter and the bound but never the value, because
 * parameter values may be sensitive and reasons reach logs and callers.
 */
export type ValueCheck = (value: CheckedValue) => string | undefined;

/** A catalog parameter compiled for evaluation. */
export interface CompiledParam {
  name: string;
  type: ParamType;
  required: boolean;
  check: ValueCheck;
}

/**
 * Converts a protobuf value to the catalog type, or returns a reason. A
 * `real` parameter also takes an integer value; no other conversion is made.
 */
export function convertValue(name: string, type: ParamType, value: ParamValue): CheckedValue | { reason: string } {
  let kinds = 0;
  if (value.nullValue !== undefined) kinds++;
  if (value.intValue !== undefined) kinds++;
  if (value.doubleValue !== undefined) kinds++;
  if (value.stringValue !== undefined) kinds++;
  if (value.bytesValue !== undefined) kinds++;
  if (value.boolValue !== undefined) kinds++;
  if (kinds !== 1) return { reason: `parameter ${JSON.stringify(name)} must set exactly one value kind, found ${kinds}` };
  if (value.nullValue !== undefined) return null;

  switch (type) {
    case "integer":
      if (value.intValue !== undefined) return value.intValue;
      break;
    case "real":
      if (value.doubleValue !== undefined) return value.doubleValue;
      if (value.intValue !== undefined) return Number(value.intValue);
      break;
    case "text":
      if (value.stringValue !== undefined) return value.stringValue;
      break;
    case "boolean":
      if (value.boolValue !== undefined) return value.boolValue;
      break;
  }
  return { reason: `parameter ${JSON.stringify(name)} must be ${type}, found ${kindOf(value)}` };
}

function kindOf(value: ParamValue): string {
  if (value.intValue !== undefined) return "integer";
  if (value.doubleValue !== undefined) return "real";
  if (value.stringValue !== undefined) return "text";
  if (value.bytesValue !== undefined) return "bytes";
  return "boolean";
}

/** Compiles the constraints of a catalog parameter (min, max, max_length, enum). */
export function compileParamSpec(name: string, spec: ParamSpec): CompiledParam {
  const checks: ValueCheck[] = [];
  const quoted = JSON.stringify(name);
  if (spec.min !== undefined) checks.push(lowerBound(quoted, spec.type, spec.min, "catalog"));
  if (spec.max !== undefined) checks.push(upperBound(quoted, spec.type, spec.max, "catalog"));
  if (spec.max_length !== undefined) {
    const maxLength = spec.max_length;
    checks.push((value) => (typeof value === "string" && characterCount(value, maxLength) > maxLength ? `parameter ${quoted} is longer than ${maxLength} characters` : undefined));
  }
  if (spec.enum !== undefined) {
    const allowed = membership(spec.type, spec.enum);
    checks.push((value) => (allowed(value) ? undefined : `parameter ${quoted} is not one of the ${spec.enum?.length ?? 0} values the catalog lists`));
  }
  return { name, type: spec.type, required: spec.required, check: combine(checks) };
}

/**
 * Compiles a rule's condition on one parameter. A missing or null value
 * fails every condition, so a rule that constrains a parameter never
 * applies to a request without it.
 */
export function compileParamCondition(name: string, type: ParamType, condition: ParamCondition, ruleName: string): (params: CheckedParams) => string | undefined {
  const quoted = JSON.stringify(name);
  const where = `rule ${JSON.stringify(ruleName)}`;
  const checks: ValueCheck[] = [];
  if (condition.equals !== undefined) {
    const matches = membership(type, [condition.equals]);
    checks.push((value) => (matches(value) ? undefined : `parameter ${quoted} does not equal the value that ${where} requires`));
  }
  if (condition.in !== undefined) {
    const matches = membership(type, condition.in);
    checks.push((value) => (matches(value) ? undefined : `parameter ${quoted} is not one of the values that ${where} lists`));
  }
  if (condition.min !== undefined) checks.push(lowerBound(quoted, type, condition.min, where));
  if (condition.max !== undefined) checks.push(upperBound(quoted, type, condition.max, where));
  if (condition.pattern !== undefined) {
    // The pattern must match the whole value, not a substring.
    const pattern = new RegExp(`^(?:${condition.pattern})$`, "u");
    checks.push((value) => (typeof value === "string" && pattern.test(value) ? undefined : `parameter ${quoted} does not match the pattern of ${where}`));
  }
  const check = combine(checks);
  return (params) => {
    const value = params.get(name);
    if (value === undefined || value === null) return `parameter ${quoted} is missing, and ${where} constrains it`;
    return check(value);
  };
}

function lowerBound(quoted: string, type: ParamType, bound: number, where: string): ValueCheck {
  const message = `parameter ${quoted} is below the minimum ${bound} of the ${where}`;
  if (type === "integer") {
    const limit = BigInt(Math.ceil(bound));
    return (value) => (typeof value === "bigint" && value < limit ? message : undefined);
  }
  return (value) => (typeof value === "number" && !(value >= bound) ? message : undefined);
}

function upperBound(quoted: string, type: ParamType, bound: number, where: string): ValueCheck {
  const message = `parameter ${quoted} is above the maximum ${bound} of the ${where}`;
  if (type === "integer") {
    const limit = BigInt(Math.floor(bound));
    return (value) => (typeof value === "bigint" && value > limit ? message : undefined);
  }
  return (value) => (typeof value === "number" && !(value <= bound) ? message : undefined);
}

/** Builds a membership test; integers compare as bigint so that 2^53 and above stay exact. */
function membership(type: ParamType, values: ReadonlyArray<string | number | boolean>): (value: CheckedValue) => boolean {
  const set = new Set<CheckedValue>(type === "integer" ? values.map((value) => BigInt(value as number)) : values);
  return (value) => set.has(value);
}

function combine(checks: ValueCheck[]): ValueCheck {
  if (checks.length === 0) return () => undefined;
  if (checks.length === 1) return checks[0];
  return (value) => {
    for (const check of checks) {
      const reason = check(value);
      if (reason !== undefined) return reason;
    }
    return undefined;
  };
}

/** Counts Unicode code points, stopping early once the count passes `limit`. */
function characterCount(text: string, limit: number): number {
  // UTF-16 length is an upper bound on code points, so short strings need no scan.
  if (text.length <= limit) return text.length;
  let count = 0;
  for (const _ of text) {
    count++;
    if (count > limit) break;
  }
  return count;
}
