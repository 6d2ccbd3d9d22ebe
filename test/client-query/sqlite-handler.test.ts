import { strict as assert } from "node:assert";
import { sign } from "node:crypto";
import Database from "better-sqlite3";
import type { SessionMessage } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { loadClientConfig } from "../../services/client/config.js";
import { QueryHandler } from "../../services/client/query/handler.js";
import { paramsSha256, verifySummarySignature } from "../../services/client/query/summary.js";
import { silentLogger } from "../../services/core/log.js";
import { sqlSha256 } from "../../services/policy/sql-hash.js";
import { CHINOOK_SQLITE, createHandler, request, rowsText, run, testKeys, writeConfig } from "./helpers.js";

const DEMO_CONFIG = new URL("../../examples/client/acme-client.yaml", import.meta.url).pathname;
const keys = testKeys();

const RECURSIVE_SQL = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c";
const REAL_KIND_SQL = "SELECT typeof(:ratio) AS kind, :ratio AS ratio";
const LINES_SQL = "SELECT InvoiceLineId, UnitPrice FROM InvoiceLine ORDER BY InvoiceLineId";
const EMPTY_SQL = "SELECT GenreId, Name FROM Genre WHERE GenreId < 0";
// Takes a few milliseconds between reporting its columns and its one row.
const SLOW_COUNT_SQL = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) SELECT count(*) AS n FROM c";

/** Names the kind of a session message the handler sent. */
function messageKind(message: SessionMessage): string {
  if (message.columns !== undefined) return "columns";
  if (message.rows !== undefined) return "rows";
  if (message.summary !== undefined) return "summary";
  return "other";
}

describe("client query handler on SQLite", () => {
  const config = loadClientConfig(DEMO_CONFIG);
  const queries = config.datasets.chinook!.queries;
  let demo: QueryHandler;
  let custom: QueryHandler;
  let direct: Database.Database;

  before(() => {
    demo = new QueryHandler({ config, signer: { sign: (d) => sign("sha256", d, keys.privateKey), serial: "01" }, logger: silentLogger() });
    const { file } = writeConfig({
      engine: "sqlite",
      path: CHINOOK_SQLITE,
      max_bytes: 2000,
      statement_timeout_ms: 2_000,
      queries: {
        endless: { sql: RECURSIVE_SQL },
        lines: { sql: LINES_SQL },
        small: { sql: "SELECT GenreId, Name FROM Genre ORDER BY GenreId" },
        none: { sql: EMPTY_SQL },
        small_capped: { sql: "SELECT GenreId, Name FROM Genre ORDER BY GenreId", max_rows: 5 },
        slow_count: { sql: SLOW_COUNT_SQL },
        ratio_kind: { sql: REAL_KIND_SQL, params: { ratio: { type: "real" } } },
      },
    });
    custom = createHandler(file, keys);
    direct = new Database(CHINOOK_SQLITE, { readonly: true });
    direct.defaultSafeIntegers(true);
  });

  after(async () => {
    await demo.close();
    await custom.close();
    direct.close();
  });

  function directRows(sql: string, params: Record<string, unknown> = {}): Array<Array<string | null>> {
    const rows = direct.prepare(sql).raw(true).all(params) as unknown[][];
    return rows.map((row) => row.map((v) => (v === null ? null : String(v))));
  }

  const demoCases: Array<[string, Record<string, unknown>, Record<string, import("../../gen/ewii/tunnel/v1/tunnel.js").Value>]> = [
    ["revenue_by_country", {}, {}],
    ["customer_invoices", { customer_id: 7n }, { customer_id: { intValue: 7n } }],
    ["top_tracks_by_genre", { genre: "Jazz", limit: 5n }, { genre: { stringValue: "Jazz" }, limit: { intValue: 5n } }],
    ["invoice_lines_all", {}, {}],
    ["employee_list", {}, {}],
  ];
  for (const [queryId, bind, params] of demoCases) {
    it(`${queryId} matches direct SQLite`, async () => {
      const sql = queries[queryId]!.sql;
      const result = await run(demo, request(queryId, sql, params));
      assert.equal(result.summary.status, "ok");
      assert.deepEqual(rowsText(result.rows), directRows(sql, bind));
      assert.equal(result.summary.rowCount, BigInt(result.rows.length));
    });
  }

  it("columns precede rows with names and types", async () => {
    const result = await run(demo, request("invoice_lines_all", queries.invoice_lines_all!.sql));
    assert.deepEqual(result.columns?.names, ["invoice_line_id", "invoice_id", "track_id", "unit_price", "quantity"]);
    assert.deepEqual(result.columns?.types, ["integer", "integer", "integer", "real", "integer"]);
  });

  it("small result leaves in one turn", async () => {
    const sent: Array<{ kind: string; turn: number }> = [];
    let turn = 0;
    let counting = true;
    const count = (): void => {
      turn += 1;
      if (counting) setImmediate(count);
    };
    setImmediate(count);

    await custom.handle(request("slow_count", SLOW_COUNT_SQL), { send: async (m) => void sent.push({ kind: messageKind(m), turn }) }, new AbortController().signal).finally(() => (counting = false));

    assert.deepEqual(
      sent.map((m) => m.kind),
      ["columns", "rows", "summary"],
    );
    assert.equal(new Set(sent.map((m) => m.turn)).size, 1, `sent in turns ${sent.map((m) => m.turn).join(", ")}`);
  });

  it("empty result still sends columns first", async () => {
    const sent: SessionMessage[] = [];
    await custom.handle(request("none", EMPTY_SQL), { send: async (m) => void sent.push(m) }, new AbortController().signal);

    assert.deepEqual(
      sent.map(messageKind),
      ["columns", "summary"],
    );
    assert.deepEqual(sent[0].columns?.names, ["GenreId", "Name"]);
    assert.equal(sent[1].summary?.status, "ok");
    assert.equal(sent[1].summary?.rowCount, 0n);
  });

  it("large result is split into chunks", async () => {
    const result = await run(demo, request("invoice_lines_all", queries.invoice_lines_all!.sql));
    assert.equal(result.rows.length, 2240);
    assert.equal(result.chunks, 5);
  });

  it("summary signature verifies", async () => {
    const result = await run(demo, request("revenue_by_country", queries.revenue_by_country!.sql));
    assert.ok(verifySummarySignature(result.summary, keys.publicKey));
  });

  for (const genre of ["' OR 1=1 --", "Jazz'; DROP TABLE Track; --", "1; DROP TABLE Genre"]) {
    it(`text parameter cannot change SQL: ${genre}`, async () => {
      const sql = queries.top_tracks_by_genre!.sql;
      const result = await run(demo, request("top_tracks_by_genre", sql, { genre: { stringValue: genre }, limit: { intValue: 100n } }));
      assert.equal(result.summary.status, "ok");
      assert.equal(result.rows.length, 0);
      assert.equal(directRows("SELECT count(*) FROM Track")[0]![0], "3503");
    });
  }

  it("integer parameter rejects SQL text", async () => {
    const sql = queries.customer_invoices!.sql;
    const result = await run(demo, request("customer_invoices", sql, { customer_id: { stringValue: "1; DROP TABLE Invoice" } }));
    assert.equal(result.summary.status, "ERR_QUERY_PARAMS_INVALID");
    assert.ok(!result.summary.message.includes("DROP"), "the message must not echo the value");
    assert.match(result.summary.message, /customer_id/);
  });

  it("missing parameter rejected", async () => {
    const result = await run(demo, request("customer_invoices", queries.customer_invoices!.sql, {}));
    assert.equal(result.summary.status, "ERR_QUERY_PARAMS_INVALID");
    assert.match(result.summary.message, /customer_id is missing/);
  });

  it("extra parameter rejected", async () => {
    const sql = queries.revenue_by_country!.sql;
    const result = await run(demo, request("revenue_by_country", sql, { country: { stringValue: "France" } }));
    assert.equal(result.summary.status, "ERR_QUERY_PARAMS_INVALID");
    assert.match(result.summary.message, /country is not a parameter/);
  });

  it("unknown query id rejected", async () => {
    const result = await run(demo, request("customer_emails", "SELECT CustomerId, Email FROM Customer"));
    assert.equal(result.summary.status, "ERR_QUERY_UNKNOWN");
    assert.equal(result.rows.length, 0);
    assert.ok(verifySummarySignature(result.summary, keys.publicKey));
  });

  it("unknown dataset rejected", async () => {
    const result = await run(demo, request("revenue_by_country", queries.revenue_by_country!.sql, {}, { dataset: "payroll" }));
    assert.equal(result.summary.status, "ERR_DATASET_UNKNOWN");
  });

  it("SQL hash mismatch rejected", async () => {
    const req = request("employee_list", "SELECT * FROM Employee");
    const result = await run(demo, req);
    assert.equal(result.summary.status, "ERR_QUERY_SQL_MISMATCH");
    assert.ok(result.summary.message.includes(req.sqlSha256), "message names the request's hash");
    assert.equal(result.summary.sqlSha256, sqlSha256(queries.employee_list!.sql));
    assert.ok(result.summary.message.includes(result.summary.sqlSha256), "message names the local hash");
  });

  it("engine hash entry takes precedence", async () => {
    const sql = queries.employee_list!.sql;
    const result = await run(demo, request("employee_list", "SELECT 1", {}, { sqlSha256ByEngine: { sqlite: sqlSha256(sql), postgres: sqlSha256("SELECT 2") } }));
    assert.equal(result.summary.status, "ok");
  });

  it("engine hash entry mismatch rejected", async () => {
    const sql = queries.employee_list!.sql;
    const result = await run(demo, request("employee_list", sql, {}, { sqlSha256ByEngine: { sqlite: sqlSha256("SELECT 1") } }));
    assert.equal(result.summary.status, "ERR_QUERY_SQL_MISMATCH");
  });

  it("summary params hash uses the salt", async () => {
    const req = request("customer_invoices", queries.customer_invoices!.sql, { customer_id: { intValue: 3n } });
    const result = await run(demo, req);
    assert.equal(result.summary.paramsSha256, paramsSha256(req.params, req.paramsSalt));
  });

  it("short params salt rejected", async () => {
    const result = await run(demo, request("employee_list", queries.employee_list!.sql, {}, { paramsSalt: Buffer.alloc(0) }));
    assert.equal(result.summary.status, "ERR_QUERY_REQUEST_INVALID");
  });

  it("duplicate request id rejected", async () => {
    const req = request("employee_list", queries.employee_list!.sql);
    const first = await run(demo, req);
    const second = await run(demo, req);
    assert.equal(first.summary.status, "ok");
    assert.equal(second.summary.status, "ERR_QUERY_DUPLICATE_REQUEST");
    assert.equal(second.rows.length, 0);
  });

  it("short request id rejected", async () => {
    const result = await run(demo, request("employee_list", queries.employee_list!.sql, {}, { requestId: Buffer.alloc(4) }));
    assert.equal(result.summary.status, "ERR_QUERY_REQUEST_INVALID");
  });

  it("row cap stops the result", async () => {
    const result = await run(custom, request("small", "SELECT GenreId, Name FROM Genre ORDER BY GenreId", {}, { maxRows: 10 }));
    assert.equal(result.summary.status, "ERR_QUERY_ROW_CAP");
    assert.match(result.summary.message, /more than 10 rows, the row cap the operator's policy sets for this query; .*raise max_rows in the policy rule or catalog/);
    assert.ok(result.summary.rowCount <= 10n);
  });

  it("client row cap names the client configuration", async () => {
    const result = await run(custom, request("small_capped", "SELECT GenreId, Name FROM Genre ORDER BY GenreId", {}, { maxRows: 10 }));

    assert.equal(result.summary.status, "ERR_QUERY_ROW_CAP");
    assert.match(result.summary.message, /more than 5 rows, the row cap; .*raise max_rows in the client configuration/);
    assert.equal(result.summary.rowCount, 5n);
  });

  it("byte cap stops the result", async () => {
    const result = await run(custom, request("lines", LINES_SQL));
    assert.equal(result.summary.status, "ERR_QUERY_BYTE_CAP");
    assert.match(result.summary.message, /larger than 2000 bytes/);
    assert.ok(result.summary.byteCount <= 2000n);
  });

  it("statement timeout stops a long query", async () => {
    const result = await run(custom, request("endless", RECURSIVE_SQL));
    assert.equal(result.summary.status, "ERR_QUERY_TIMEOUT");
    assert.match(result.summary.message, /2000 ms/);
  });

  it("handler serves after a timeout", async () => {
    const result = await run(custom, request("small", "SELECT GenreId, Name FROM Genre ORDER BY GenreId"));
    assert.equal(result.summary.status, "ok");
    assert.equal(result.rows.length, 25);
  });

  it("real parameter binds an integer as double", async () => {
    const result = await run(custom, request("ratio_kind", REAL_KIND_SQL, { ratio: { intValue: 1n } }));
    assert.equal(result.summary.status, "ok", result.summary.message);
    assert.equal(result.rows[0]?.values[0]?.stringValue, "real");
    assert.equal(result.rows[0]?.values[1]?.doubleValue, 1);
  });

  it("abort cancels a running query", async () => {
    const controller = new AbortController();
    const pending = run(custom, request("endless", RECURSIVE_SQL), controller.signal);
    setTimeout(() => controller.abort(), 50);
    const result = await pending;
    assert.equal(result.summary.status, "ERR_QUERY_CANCELLED");
  });
});
