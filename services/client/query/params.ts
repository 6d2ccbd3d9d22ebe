import { status } from "@grpc/grpc-js";
import { EwiiError } from "../../core/errors.js";
import type { Value } from "../../../gen/ewii/tunnel/v1/tunnel.js";
import type { ParamType } from "../config.js";
import type { ApprovedQuery } from "./catalog.js";

/**
 * Checks request parameters against a query's declarations and returns
 * them in declared order. No undeclared name is accepted. A parameter
 * declared `required: false` may be left out or sent as NULL and is then
 * bound as NULL; every other parameter must be present and set exactly the
 * field of its declared type. A real parameter also takes an
 * integer up to ±2^53, returned as a double. Errors name the parameter,
 * never its value.
 */
export function validateParams(query: ApprovedQuery, params: Readonly<Record<string, Value>>): Array<{ name: string; value: Value }> {
  const declared = new Set(query.params.map((p) => p.name));
  for (const name of Object.keys(params).sort()) {
    if (!declared.has(name)) throw invalidParams(query, name, `is not a parameter of query ${query.id}; it takes ${describeParams(query)}`);
  }
  return query.params.map(({ name, type, required }) => {
    const value = params[name];
    if (!required && (value === undefined || (value.nullValue === true && setFields(value).length === 1))) return { name, value: { nullValue: true } };
    if (value === undefined) throw invalidParams(query, name, `is missing; query ${query.id} takes ${describeParams(query)}`);
    const kinds = setFields(value);
    if (kinds.length === 1 && kinds[0] === "nullValue") throw invalidParams(query, name, `must not be NULL; the client configuration requires it (set required: false there to allow NULL)`);
    if (kinds.length !== 1) throw invalidParams(query, name, `must set exactly one Value field, found ${kinds.length}`);
    if (type === "real" && value.intValue !== undefined) return { name, value: { doubleValue: exactDouble(query, name, value.intValue) } };
    if (kinds[0] !== FIELD_OF_TYPE[type]) throw invalidParams(query, name, `must be of type ${type} (Value.${FIELD_OF_TYPE[type]}), found Value.${kinds[0]}`);
    return { name, value };
  });
}

/** Largest magnitude up to which every integer has an exact IEEE 754 double. */
const MAX_EXACT_DOUBLE_INTEGER = 2n ** 53n;

/**
 * Converts an integer sent for a `real` parameter to the double it is bound
 * as. The policy accepts integers for real parameters, so the client does
 * too, but only those a double represents exactly.
 */
function exactDouble(query: ApprovedQuery, name: string, value: bigint): number {
  if (value > MAX_EXACT_DOUBLE_INTEGER || value < -MAX_EXACT_DOUBLE_INTEGER) {
    throw invalidParams(query, name, `is of type real and its integer value is outside ±2^53, where a double cannot represent every integer exactly; send it as Value.doubleValue`);
  }
  return Number(value);
}

const FIELD_OF_TYPE: Record<ParamType, keyof Value> = {
  integer: "intValue",
  real: "doubleValue",
  text: "stringValue",
  boolean: "boolValue",
};

const VALUE_FIELDS: Array<keyof Value> = ["nullValue", "intValue", "doubleValue", "stringValue", "bytesValue", "boolValue"];

function setFields(value: Value): Array<keyof Value> {
  return VALUE_FIELDS.filter((field) => value[field] !== undefined);
}

function describeParams(query: ApprovedQuery): string {
  if (query.params.length === 0) return "no parameters";
  return query.params.map((p) => `${p.name} (${p.type})`).join(", ");
}

function invalidParams(query: ApprovedQuery, name: string, problem: string): EwiiError {
  const displayedName = /^[A-Za-z0-9_]{1,64}$/.test(name) ? name : "(a name that is not an identifier)";
  return new EwiiError("ERR_QUERY_PARAMS_INVALID", `parameter ${displayedName} ${problem}`, {
    status: status.INVALID_ARGUMENT,
    details: { query_id: query.id },
  });
}
