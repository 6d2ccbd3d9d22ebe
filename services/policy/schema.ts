import { z } from "zod";

/**
 * Shape of a policy document, version 1. `document.ts` adds the checks that
 * span fields (references between rules and the catalog, trust domains,
 * placeholders) and the error formatting.
 */

/** Row cap of a catalog query that sets no `max_rows`. */
export const DEFAULT_QUERY_MAX_ROWS = 1000;

/** Largest row cap a document may set, the range of the proto's uint32 `max_rows`. */
export const MAX_ROWS_LIMIT = 4_294_967_295;

/** Catalog identifiers: dataset names, query ids, rule names. */
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const IDENTIFIER_HINT = "use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit";

/** Parameter names double as SQL named placeholders (`:name`), so they follow SQL identifier syntax. */
export const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Tenant names are DNS labels because each tenant has its own trust domain under the operator's. */
const TENANT_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** SPIFFE trust domain names: lowercase letters, digits, '.', '-' and '_' (SPIFFE ID specification, section 2.1). */
export const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

const HH_MM = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;

export const PARAM_TYPES = ["integer", "real", "text", "boolean"] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

export const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const identifier = z.string().regex(IDENTIFIER, IDENTIFIER_HINT);
const scalar = z.union([z.string(), z.number(), z.boolean()]);
const rowCap = z.number().int().min(1).max(MAX_ROWS_LIMIT);

const paramSpecSchema = z.strictObject({
  type: z.enum(PARAM_TYPES),
  description: z.string().default(""),
  /** Parameters are required unless the document says `required: false`. */
  required: z.boolean().default(true),
  min: z.number().optional(),
  max: z.number().optional(),
  max_length: z.number().int().min(1).optional(),
  enum: z.array(scalar).min(1).optional(),
});

const querySchema = z.strictObject({
  description: z.string().default(""),
  sql: z.strictObject({
    sqlite: z.string().optional(),
    postgres: z.string().optional(),
  }),
  params: z.record(z.string().regex(PARAM_NAME, "use a SQL identifier: letters, digits and '_', not starting with a digit"), paramSpecSchema).default({}),
  max_rows: rowCap.default(DEFAULT_QUERY_MAX_ROWS),
});

const datasetSchema = z.strictObject({
  description: z.string().default(""),
  queries: z.record(identifier, querySchema),
});

const paramConditionSchema = z.strictObject({
  equals: scalar.optional(),
  in: z.array(scalar).min(1).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  /** A JavaScript regular expression, matched against the whole text value. */
  pattern: z.string().optional(),
});

const timeWindowSchema = z.strictObject({
  days: z.array(z.enum(WEEKDAYS)).min(1).default([...WEEKDAYS]),
  start: z.string().regex(HH_MM, 'use 24-hour "HH:MM", for example "08:00"'),
  end: z.string().regex(HH_MM, 'use 24-hour "HH:MM", for example "18:00"'),
  timezone: z.string().default("UTC"),
});

const conditionsSchema = z.strictObject({
  params: z.record(z.string(), paramConditionSchema).optional(),
  time_window: timeWindowSchema.optional(),
  rate_limit: z.strictObject({ per_minute: z.number().int().min(1).max(1_000_000) }).optional(),
  max_rows: rowCap.optional(),
});

const ruleSchema = z.strictObject({
  name: identifier,
  description: z.string().default(""),
  effect: z.enum(["allow", "deny"]),
  principals: z.array(z.string()).min(1),
  tenants: z.array(z.string().refine((value) => value === "*" || TENANT_NAME.test(value), 'use a tenant name (a DNS label such as "acme") or "*"')).min(1),
  datasets: z.array(z.string()).min(1),
  queries: z.array(z.string()).min(1),
  conditions: conditionsSchema.optional(),
});

export const policyDocumentSchema = z.strictObject({
  version: z.literal(1),
  operator_trust_domain: z.string().regex(TRUST_DOMAIN, 'use a trust domain name such as "operator.example": lowercase letters, digits, ".", "-" and "_"'),
  catalog: z.record(identifier, datasetSchema),
  rules: z.array(ruleSchema).default([]),
});

export type PolicyDocument = z.infer<typeof policyDocumentSchema>;
export type DatasetDefinition = PolicyDocument["catalog"][string];
export type QueryDefinition = DatasetDefinition["queries"][string];
export type ParamSpec = QueryDefinition["params"][string];
export type PolicyRule = PolicyDocument["rules"][number];
export type RuleConditions = NonNullable<PolicyRule["conditions"]>;
export type ParamCondition = NonNullable<RuleConditions["params"]>[string];
export type TimeWindow = NonNullable<RuleConditions["time_window"]>;
export type SqlEngine = keyof QueryDefinition["sql"];
export const SQL_ENGINES: readonly SqlEngine[] = ["sqlite", "postgres"];
