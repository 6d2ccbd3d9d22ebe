import { strict as assert } from "node:assert";
import pg from "pg";
import type { QueryHandler } from "../../services/client/query/handler.js";
import { verifySummarySignature } from "../../services/client/query/summary.js";
import { createChinookDatabase, createHandler, createUncheckedHandler, dropDatabase, request, rowsText, run, testKeys, writeConfig } from "./helpers.js";

const keys = testKeys();

/** Statement timeout of the handler that only runs the endless query. */
const SHORT_TIMEOUT_MS = 500;

// The catalog's PostgreSQL texts with `:name` placeholders.
const SQL = {
  revenue_by_country: `SELECT billing_country AS country,
       COUNT(*) AS invoices,
       CAST(ROUND(SUM(total), 2) AS double precision) AS revenue
FROM invoice
GROUP BY billing_country
ORDER BY revenue DESC, country`,
  customer_invoices: `SELECT invoice_id,
       to_char(invoice_date, 'YYYY-MM-DD HH24:MI:SS') AS invoice_date,
       billing_country,
       CAST(total AS double precision) AS total
FROM invoice
WHERE customer_id = :customer_id
ORDER BY invoice_id`,
  top_tracks_by_genre: `SELECT t.track_id, t.name AS track, ar.name AS artist, SUM(il.quantity) AS units_sold
FROM track t
JOIN genre g ON g.genre_id = t.genre_id
JOIN invoice_line il ON il.track_id = t.track_id
LEFT JOIN album al ON al.album_id = t.album_id
LEFT JOIN artist ar ON ar.artist_id = al.artist_id
WHERE g.name = :genre
GROUP BY t.track_id, t.name, ar.name
ORDER BY units_sold DESC, t.track_id
LIMIT :limit`,
  invoice_lines_all: "SELECT invoice_line_id, invoice_id, track_id, unit_price, quantity FROM invoice_line ORDER BY invoice_line_id",
  endless: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c",
  delete_lines: "DELETE FROM invoice_line WHERE invoice_id = :invoice_id",
  cte_delete_lines: "WITH gone AS (DELETE FROM invoice_line WHERE invoice_id = :invoice_id RETURNING 1) SELECT count(*) FROM gone",
  copy_genre: "COPY genre TO STDOUT",
  copy_program: "COPY (SELECT 1) TO PROGRAM 'true'",
};

describe("client query handler on PostgreSQL", function () {
  this.timeout(60_000);
  let database: { name: string; url: string };
  let handler: QueryHandler;
  let unchecked: QueryHandler;
  let shortTimeoutHandler: QueryHandler;
  let direct: pg.Client;

  before(async () => {
    database = createChinookDatabase();
    const { file } = writeConfig({
      engine: "postgres",
      url: database.url,
      max_rows: 3000,
      // Long enough that no catalog query times out on a loaded machine. The timeout test has its own handler.
      statement_timeout_ms: 60_000,
      queries: {
        revenue_by_country: { sql: SQL.revenue_by_country },
        customer_invoices: { sql: SQL.customer_invoices, params: { customer_id: { type: "integer" } } },
        top_tracks_by_genre: { sql: SQL.top_tracks_by_genre, params: { genre: { type: "text" }, limit: { type: "integer" } } },
        invoice_lines_all: { sql: SQL.invoice_lines_all },
        endless: { sql: SQL.endless },
      },
    });
    handler = createHandler(file, keys);
    // These statements fail the loader's checks, so the executor's own guards are tested here.
    unchecked = createUncheckedHandler(
      {
        engine: "postgres",
        url: database.url,
        queries: {
          delete_lines: { sql: SQL.delete_lines, params: { invoice_id: { type: "integer" } } },
          cte_delete_lines: { sql: SQL.cte_delete_lines, params: { invoice_id: { type: "integer" } } },
          copy_genre: { sql: SQL.copy_genre },
          copy_program: { sql: SQL.copy_program },
          revenue_by_country: { sql: SQL.revenue_by_country },
        },
      },
      keys,
    );
    const short = writeConfig({ engine: "postgres", url: database.url, statement_timeout_ms: SHORT_TIMEOUT_MS, queries: { endless: { sql: SQL.endless } } });
    shortTimeoutHandler = createHandler(short.file, keys);
    direct = new pg.Client({ connectionString: database.url });
    await direct.connect();
  });

  after(async () => {
    await handler?.close();
    await unchecked?.close();
    await shortTimeoutHandler?.close();
    await direct?.end();
    if (database !== undefined) dropDatabase(database.name);
  });

  async function directRows(sql: string, values: unknown[] = []): Promise<Array<Array<string | null>>> {
    const result = await direct.query({ text: sql, values, rowMode: "array" });
    return (result.rows as unknown[][]).map((row) => row.map((v) => (v === null ? null : String(v))));
  }

  it("revenue_by_country matches direct PostgreSQL", async () => {
    const result = await run(handler, request("revenue_by_country", SQL.revenue_by_country));
    assert.equal(result.summary.status, "ok");
    assert.deepEqual(rowsText(result.rows), await directRows(SQL.revenue_by_country));
  });

  it("customer_invoices matches direct PostgreSQL", async () => {
    const result = await run(handler, request("customer_invoices", SQL.customer_invoices, { customer_id: { intValue: 7n } }));
    assert.equal(result.summary.status, "ok");
    assert.deepEqual(rowsText(result.rows), await directRows(SQL.customer_invoices.replace(":customer_id", "$1"), [7]));
  });

  it("top_tracks_by_genre matches direct PostgreSQL", async () => {
    const result = await run(handler, request("top_tracks_by_genre", SQL.top_tracks_by_genre, { genre: { stringValue: "Rock" }, limit: { intValue: 10n } }));
    assert.equal(result.summary.status, "ok");
    assert.deepEqual(rowsText(result.rows), await directRows(SQL.top_tracks_by_genre.replace(":genre", "$1").replace(":limit", "$2"), ["Rock", 10]));
  });

  it("numeric column arrives as a double", async () => {
    const result = await run(handler, request("invoice_lines_all", SQL.invoice_lines_all));
    assert.equal(result.summary.status, "ok", result.summary.message);
    assert.equal(result.columns?.types[3], "real");
    assert.equal(result.rows[0]?.values[3]?.doubleValue, 0.99);
    assert.equal(result.rows.length, 2240);
  });

  it("summary signature verifies", async () => {
    const result = await run(handler, request("revenue_by_country", SQL.revenue_by_country));
    assert.ok(verifySummarySignature(result.summary, keys.publicKey));
  });

  for (const genre of ["' OR 1=1 --", "Rock'; DROP TABLE track; --", "1; DROP TABLE genre"]) {
    it(`text parameter cannot change SQL: ${genre}`, async () => {
      const result = await run(handler, request("top_tracks_by_genre", SQL.top_tracks_by_genre, { genre: { stringValue: genre }, limit: { intValue: 5n } }));
      assert.equal(result.summary.status, "ok");
      assert.equal(result.rows.length, 0);
      assert.deepEqual(await directRows("SELECT count(*) FROM track"), [["3503"]]);
    });
  }

  it("write statement rejected", async () => {
    const result = await run(unchecked, request("delete_lines", SQL.delete_lines, { invoice_id: { intValue: 1n } }));
    assert.equal(result.summary.status, "ERR_QUERY_NOT_READ_ONLY");
    assert.deepEqual(await directRows("SELECT count(*) FROM invoice_line WHERE invoice_id = 1"), [["2"]]);
  });

  it("data-modifying WITH fails read-only", async () => {
    const result = await run(unchecked, request("cte_delete_lines", SQL.cte_delete_lines, { invoice_id: { intValue: 1n } }));
    assert.equal(result.summary.status, "ERR_QUERY_FAILED");
    assert.match(result.summary.message, /25006/);
    assert.deepEqual(await directRows("SELECT count(*) FROM invoice_line WHERE invoice_id = 1"), [["2"]]);
  });

  for (const queryId of ["copy_genre", "copy_program"] as const) {
    it(`${queryId} rejected, client keeps serving`, async () => {
      const result = await run(unchecked, request(queryId, SQL[queryId]));
      assert.equal(result.summary.status, "ERR_QUERY_NOT_READ_ONLY");
      assert.match(result.summary.message, /starts with COPY/);
      const after = await run(unchecked, request("revenue_by_country", SQL.revenue_by_country));
      assert.equal(after.summary.status, "ok");
    });
  }

  it("row cap stops the result", async () => {
    const result = await run(handler, request("invoice_lines_all", SQL.invoice_lines_all, {}, { maxRows: 150 }));
    assert.equal(result.summary.status, "ERR_QUERY_ROW_CAP");
    assert.match(result.summary.message, /more than 150 rows/);
  });

  it("statement timeout stops a long query", async () => {
    const result = await run(shortTimeoutHandler, request("endless", SQL.endless));
    assert.equal(result.summary.status, "ERR_QUERY_TIMEOUT");
    assert.match(result.summary.message, new RegExp(`${SHORT_TIMEOUT_MS} ms`));
  });

  it("abort cancels a running query", async () => {
    const controller = new AbortController();
    const pending = run(handler, request("endless", SQL.endless), controller.signal);
    setTimeout(() => controller.abort(), 50);
    const result = await pending;
    assert.equal(result.summary.status, "ERR_QUERY_CANCELLED");
  });

  it("handler serves after a cancel", async () => {
    const result = await run(handler, request("customer_invoices", SQL.customer_invoices, { customer_id: { intValue: 1n } }));
    assert.equal(result.summary.status, "ok");
    assert.equal(result.rows.length, 7);
  });
});
