/**
 * The baseline of bench/query.ts: a plain grpc-js server over mTLS that
 * serves the HubService ExecuteQuery contract straight from the database
 * with better-sqlite3, in the same process as the server. It has no policy,
 * audit, relay, end-to-end session or signature, so it shows what the query
 * costs with only gRPC and TLS around it. Rows go out in the same chunks as
 * the Ewii client sends them (500 rows or 64 KiB of encoded rows).
 */
import { once } from "node:events";
import Database from "better-sqlite3";
import * as grpc from "@grpc/grpc-js";
import { HubServiceService, type ExecuteQueryRequest, type ExecuteQueryResponse, type HubServiceServer } from "../gen/ewii/hub/v1/hub.js";
import type { Row } from "../gen/ewii/tunnel/v1/tunnel.js";
import { CHUNK_MAX_BYTES, CHUNK_MAX_ROWS } from "../services/client/query/handler.js";
import { encodedRowLength } from "../services/client/query/executor.js";
import { sqliteBindValue, valueFromSqlite } from "../services/client/query/values.js";

export interface BaselineServer {
  address: string;
  close(): Promise<void>;
}

export interface BaselineOptions {
  databasePath: string;
  /** SQL text per query id, with `:name` placeholders. */
  sqlByQueryId: Record<string, string>;
  /** Server certificate chain and key (the hub's SVID, so callers' checks pass), and the CA bundle that signs callers. */
  certChainPem: string;
  privateKeyPem: string;
  trustedCasPem: string;
}

/** Starts the baseline server on 127.0.0.1 on a free port. */
export async function startBaselineServer(options: BaselineOptions): Promise<BaselineServer> {
  const db = new Database(options.databasePath, { readonly: true, fileMustExist: true });
  db.pragma("query_only = ON");
  db.defaultSafeIntegers(true);
  const statements = new Map(Object.entries(options.sqlByQueryId).map(([id, sql]) => [id, db.prepare(sql)]));

  const executeQuery = async (call: grpc.ServerWritableStream<ExecuteQueryRequest, ExecuteQueryResponse>): Promise<void> => {
    const statement = statements.get(call.request.queryId);
    if (statement === undefined) {
      call.emit("error", { code: grpc.status.NOT_FOUND, details: `unknown query ${call.request.queryId}` });
      return;
    }
    const params = Object.fromEntries(Object.entries(call.request.params).map(([name, value]) => [name, sqliteBindValue(value)]));
    const columns = statement.columns();
    call.write({ columns: { names: columns.map((c) => c.name), types: columns.map(() => "") } });
    let chunk: Row[] = [];
    let chunkBytes = 0;
    let rowCount = 0n;
    let byteCount = 0n;
    const flush = async (): Promise<void> => {
      const rows = chunk;
      chunk = [];
      chunkBytes = 0;
      if (!call.write({ rows: { rows } })) await once(call, "drain");
    };
    for (const raw of statement.raw(true).iterate(params) as IterableIterator<unknown[]>) {
      const row: Row = { values: raw.map(valueFromSqlite) };
      const length = encodedRowLength(row);
      chunk.push(row);
      chunkBytes += length;
      rowCount += 1n;
      byteCount += BigInt(length);
      if (chunk.length >= CHUNK_MAX_ROWS || chunkBytes >= CHUNK_MAX_BYTES) await flush();
    }
    if (chunk.length > 0) await flush();
    call.write({ summary: { requestId: "", rowCount, byteCount, rowsSha256: "", rule: "", policyVersion: 0n, auditSequence: 0n, elapsedMs: 0 } });
    call.end();
  };

  const server = new grpc.Server();
  const implementation: HubServiceServer = {
    executeQuery: (call) => {
      executeQuery(call).catch((err: unknown) => call.emit("error", { code: grpc.status.INTERNAL, details: String(err) }));
    },
    listClients: (_call, callback) => callback(null, { clients: [] }),
  };
  server.addService(HubServiceService, implementation);
  const credentials = grpc.ServerCredentials.createSsl(Buffer.from(options.trustedCasPem), [{ cert_chain: Buffer.from(options.certChainPem), private_key: Buffer.from(options.privateKeyPem) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", credentials, (err, bound) => (err === null ? resolve(bound) : reject(err))));
  return {
    address: `127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      db.close();
    },
  };
}
