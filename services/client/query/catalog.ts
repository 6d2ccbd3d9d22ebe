import { sqlSha256 } from "../../policy/sql-hash.js";
import type { ClientConfig, DatasetConfig, ParamType } from "../config.js";
import type { DatasetExecutor } from "./executor.js";
import { PostgresExecutor } from "./postgres.js";
import { SqliteExecutor } from "./sqlite.js";

/** A query the customer approved, as the handler checks and runs it. */
export interface ApprovedQuery {
  id: string;
  /** The customer's local SQL text, with `:name` placeholders. */
  sql: string;
  /** `sqlSha256(sql)`, compared with the hash in each request. */
  sqlSha256: string;
  /** Declared parameters in the order of the configuration file. */
  params: Array<{ name: string; type: ParamType; required: boolean }>;
  /** Row cap of this query: its own `max_rows`, else the dataset's. */
  maxRows: number;
}

/** A configured dataset with its approved queries. */
export interface LocalDataset {
  name: string;
  config: DatasetConfig;
  queries: ReadonlyMap<string, ApprovedQuery>;
}

/** Builds the allow-list the handler checks, hashing each approved SQL text once. */
export function buildLocalCatalog(config: ClientConfig): Map<string, LocalDataset> {
  const datasets = new Map<string, LocalDataset>();
  for (const [name, dataset] of Object.entries(config.datasets)) {
    const queries = new Map<string, ApprovedQuery>();
    for (const [id, query] of Object.entries(dataset.queries)) {
      queries.set(id, {
        id,
        sql: query.sql,
        sqlSha256: sqlSha256(query.sql),
        params: Object.entries(query.params).map(([paramName, param]) => ({ name: paramName, type: param.type, required: param.required })),
        maxRows: query.max_rows ?? dataset.max_rows,
      });
    }
    datasets.set(name, { name, config: dataset, queries });
  }
  return datasets;
}

/** Creates the executor for a dataset's engine. PostgreSQL SQL is rewritten to `$n` placeholders here, once. */
export function createExecutor(dataset: LocalDataset): DatasetExecutor {
  const config = dataset.config;
  if (config.engine === "sqlite") return new SqliteExecutor(config.path);
  return new PostgresExecutor(
    config.url,
    [...dataset.queries.values()].map((q) => q.sql),
  );
}
