import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { Value } from "../../gen/ewii/tunnel/v1/tunnel.js";

export const DEMO_POLICY_PATH = fileURLToPath(new URL("../../examples/policy/demo.yaml", import.meta.url));
export const DEMO_POLICY_YAML = readFileSync(DEMO_POLICY_PATH, "utf8");
export const DEMO_CALLER = "spiffe://operator.example/caller/reports";

/** A catalog query as plain data; tests may set any key, valid or not. */
export interface QueryInput {
  [key: string]: unknown;
  sql: Record<string, string | undefined>;
  params: Record<string, Record<string, unknown>>;
}

/** A rule as plain data; tests may set or delete any key. */
export interface RuleInput {
  [key: string]: unknown;
  name?: string;
  principals?: string[];
  tenants?: string[];
  datasets?: string[];
  queries?: string[];
}

/** A policy document as plain data, before validation. */
export interface DocumentInput {
  [key: string]: unknown;
  operator_trust_domain: string;
  catalog: Record<string, { queries: Record<string, QueryInput> }>;
  rules: RuleInput[];
}

/** A small valid document as plain data, for tests that change one field. */
export function baseDocument(): DocumentInput {
  return {
    version: 1,
    operator_trust_domain: "operator.example",
    catalog: {
      shop: {
        queries: {
          orders: {
            description: "orders of a customer",
            sql: { sqlite: "SELECT * FROM orders WHERE customer_id = :customer_id", postgres: "SELECT * FROM orders WHERE customer_id = :customer_id" },
            params: { customer_id: { type: "integer", min: 1, max: 100 } },
            max_rows: 50,
          },
          search: {
            sql: { sqlite: "SELECT * FROM items WHERE name = :name AND kind = :kind LIMIT :limit" },
            params: {
              name: { type: "text", max_length: 5 },
              kind: { type: "text", enum: ["book", "film"], required: false },
              limit: { type: "integer", min: 1, max: 10 },
            },
          },
          totals: { sql: { sqlite: "SELECT SUM(total) FROM orders" }, params: {} },
        },
      },
    },
    rules: [
      {
        name: "allow-callers",
        effect: "allow",
        principals: ["spiffe://operator.example/caller/"],
        tenants: ["acme"],
        datasets: ["shop"],
        queries: ["*"],
      },
    ],
  };
}

export function toYaml(document: unknown): string {
  return stringify(document);
}

export const int = (value: number | bigint): Value => ({ intValue: BigInt(value) });
export const text = (value: string): Value => ({ stringValue: value });
export const real = (value: number): Value => ({ doubleValue: value });
