import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Row } from "../../gen/ewii/tunnel/v1/tunnel.js";
import type { Value } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { errorCodeOf } from "../../services/core/errors.js";
import { EXECUTOR_BATCH_ROWS } from "../../services/client/query/executor.js";
import type { ExecutionRequest } from "../../services/client/query/executor.js";
import { SqliteExecutor } from "../../services/client/query/sqlite.js";
import { collectRows } from "./helpers.js";

const MAX_INT64 = (1n << 63n) - 1n;
const MIN_INT64 = -(1n << 63n);
/** Rows in the test table: enough for several batches and IPC messages of several reads. */
const ROW_COUNT = EXECUTOR_BATCH_ROWS * 3 + 7;
const ALL_SQL = "SELECT id, big, blob, note, ratio FROM t ORDER BY id";

/** Builds the blob of row `id`: sizes vary from empty to 100 KiB, and the content depends on the id. */
function blobFor(id: number): Buffer {
  const size = id % 10 === 0 ? 0 : (id * 997) % (100 * 1024);
  return Buffer.alloc(size, id % 251);
}

/** Returns the values of row `id` as the executor should send them. */
function expectedRow(id: number): Value[] {
  const big = id % 2 === 0 ? MAX_INT64 - BigInt(id) : MIN_INT64 + BigInt(id);
  return [
    { intValue: BigInt(id) },
    { intValue: big },
    id % 7 === 0 ? { nullValue: true } : { bytesValue: blobFor(id) },
    id % 5 === 0 ? { nullValue: true } : { stringValue: `row ${id} \u6f22\u{1f600}` },
    { doubleValue: id / 8 },
  ];
}

const collect = (executor: SqliteExecutor, request: Partial<ExecutionRequest> & { sql: string }): ReturnType<typeof collectRows> => collectRows(executor, request);

describe("SQLite executor rows", () => {
  let dir: string;
  let executor: SqliteExecutor;
  const encodedLengths: number[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "ewii-sqlite-rows-"));
    const path = join(dir, "rows.sqlite");
    const db = new Database(path);
    db.defaultSafeIntegers(true);
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, blob BLOB, note TEXT, ratio REAL)");
    const insert = db.prepare("INSERT INTO t VALUES (?, ?, ?, ?, ?)");
    for (let id = 1; id <= ROW_COUNT; id++) {
      const [, big, blob, note, ratio] = expectedRow(id);
      insert.run(BigInt(id), big.intValue, blob.bytesValue ?? null, note.stringValue ?? null, ratio.doubleValue);
      encodedLengths.push(Row.encode({ values: expectedRow(id) }).finish().length);
    }
    db.close();
    executor = new SqliteExecutor(path);
  });

  after(async () => {
    await executor.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("blobs, NULLs and 64-bit integers arrive intact", async () => {
    const { rows, result, error } = await collect(executor, { sql: ALL_SQL });

    assert.equal(error, undefined);
    assert.equal(rows.length, ROW_COUNT);
    rows.forEach((encoded, i) => {
      const id = i + 1;
      assert.deepEqual(Buffer.from(encoded), Buffer.from(Row.encode({ values: expectedRow(id) }).finish()), `row ${id} differs`);
    });
    assert.equal(result?.rowCount, ROW_COUNT);
    assert.equal(result?.byteCount, encodedLengths.reduce((sum, length) => sum + length, 0));
  });

  it("decoded rows keep their types", async () => {
    const { rows } = await collect(executor, { sql: "SELECT id, big, blob, note, ratio FROM t WHERE id IN (1, 2, 7, 10) ORDER BY id" });
    const decoded = rows.map((encoded) => Row.decode(encoded).values);

    assert.equal(decoded[0][1].intValue, MIN_INT64 + 1n);
    assert.equal(decoded[1][1].intValue, MAX_INT64 - 2n);
    assert.equal(decoded[2][2].nullValue, true);
    assert.deepEqual(decoded[3][2].bytesValue, Buffer.alloc(0));
    assert.equal(decoded[3][3].nullValue, true);
    assert.ok(Buffer.isBuffer(decoded[0][2].bytesValue));
  });

  for (const maxRows of [1, EXECUTOR_BATCH_ROWS - 1, EXECUTOR_BATCH_ROWS + 50]) {
    it(`row cap of ${maxRows} sends ${maxRows} rows`, async () => {
      const { rows, error } = await collect(executor, { sql: ALL_SQL, maxRows });

      assert.equal(errorCodeOf(error), "ERR_QUERY_ROW_CAP");
      assert.equal(rows.length, maxRows);
    });
  }

  it("byte cap stops before the passing row", async () => {
    const sentRows = EXECUTOR_BATCH_ROWS + 20;
    const maxBytes = encodedLengths.slice(0, sentRows).reduce((sum, length) => sum + length, 0) + encodedLengths[sentRows] - 1;
    const { rows, error } = await collect(executor, { sql: ALL_SQL, maxBytes });

    assert.equal(errorCodeOf(error), "ERR_QUERY_BYTE_CAP");
    assert.equal(rows.length, sentRows);
  });

  it("cap error keeps the child process", async () => {
    await collect(executor, { sql: ALL_SQL });
    const started = executor.processesStarted;

    const capped = await collect(executor, { sql: ALL_SQL, maxRows: 1 });
    const next = await collect(executor, { sql: ALL_SQL });

    assert.equal(errorCodeOf(capped.error), "ERR_QUERY_ROW_CAP");
    assert.equal(next.rows.length, ROW_COUNT);
    assert.equal(executor.processesStarted, started);
  });

  it("result at the caps succeeds", async () => {
    const maxBytes = encodedLengths.reduce((sum, length) => sum + length, 0);
    const { rows, error } = await collect(executor, { sql: ALL_SQL, maxRows: ROW_COUNT, maxBytes });

    assert.equal(error, undefined);
    assert.equal(rows.length, ROW_COUNT);
  });
});
