import { strict as assert } from "node:assert";
import { copyFileSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { QueryHandler } from "../../services/client/query/handler.js";
import { CHINOOK_SQLITE, createUncheckedHandler, request, rowsText, run, testKeys } from "./helpers.js";

const keys = testKeys();

/**
 * Approved SQLite statements that are not read-only queries. The file is
 * opened read-only with query_only, yet SQLite still runs these: ATTACH
 * opens another file, PRAGMA assignments and BEGIN change the connection
 * that later queries reuse, and VACUUM INTO creates a file before failing.
 */
describe("client SQLite read-only guard", () => {
  const dir = mkdtempSync(join(tmpdir(), "ewii-sqlite-read-only-"));
  const other = join(dir, "other.sqlite");
  const vacuumTarget = join(dir, "vacuum-copy.sqlite");
  const SQL = {
    attach: `ATTACH DATABASE '${other}' AS other`,
    databases: "SELECT name FROM pragma_database_list ORDER BY seq",
    queryOnlyOff: "PRAGMA query_only = OFF",
    queryOnly: "SELECT query_only FROM pragma_query_only",
    begin: "BEGIN",
    vacuumInto: `VACUUM INTO '${vacuumTarget}'`,
    journalMode: "PRAGMA journal_mode = DELETE",
    deleteGenre: "DELETE FROM Genre WHERE GenreId = 1",
    genreCount: "SELECT count(*) FROM Genre",
  };
  let handler: QueryHandler;

  before(() => {
    copyFileSync(CHINOOK_SQLITE, other);
    handler = createUncheckedHandler(
      {
        engine: "sqlite",
        path: CHINOOK_SQLITE,
        queries: Object.fromEntries(Object.entries(SQL).map(([id, sql]) => [id, { sql }])),
      },
      keys,
    );
  });

  after(async () => {
    await handler.close();
  });

  async function status(queryId: keyof typeof SQL): Promise<string> {
    return (await run(handler, request(queryId, SQL[queryId]))).summary.status;
  }

  it("ATTACH is rejected", async () => {
    assert.equal(await status("attach"), "ERR_QUERY_NOT_READ_ONLY");
    const databases = await run(handler, request("databases", SQL.databases));
    assert.deepEqual(rowsText(databases.rows), [["main"]]);
  });

  it("PRAGMA assignment is rejected", async () => {
    assert.equal(await status("queryOnlyOff"), "ERR_QUERY_NOT_READ_ONLY");
    const queryOnly = await run(handler, request("queryOnly", SQL.queryOnly));
    assert.deepEqual(rowsText(queryOnly.rows), [["1"]]);
  });

  it("writing PRAGMA with rows rejected", async () => {
    assert.equal(await status("journalMode"), "ERR_QUERY_NOT_READ_ONLY");
  });

  it("BEGIN is rejected", async () => {
    assert.equal(await status("begin"), "ERR_QUERY_NOT_READ_ONLY");
  });

  it("VACUUM INTO creates no file", async () => {
    assert.equal(await status("vacuumInto"), "ERR_QUERY_NOT_READ_ONLY");
    assert.equal(existsSync(vacuumTarget), false);
  });

  it("DELETE is rejected before it runs", async () => {
    const result = await run(handler, request("deleteGenre", SQL.deleteGenre));
    assert.equal(result.summary.status, "ERR_QUERY_NOT_READ_ONLY");
    assert.match(result.summary.message, /approve only SELECT/);
    assert.deepEqual(rowsText((await run(handler, request("genreCount", SQL.genreCount))).rows), [["25"]]);
  });
});
