import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Row } from "../../gen/ewii/tunnel/v1/tunnel.js";
import type { Value } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { errorCodeOf } from "../../services/core/errors.js";
import { EXECUTOR_BATCH_ROWS } from "../../services/client/query/executor.js";
import type { ExecutionRequest } from "../../services/client/query/executor.js";
import { PostgresExecutor } from "../../services/client/query/postgres.js";
import { collectRows, dropDatabase } from "./helpers.js";

const MAX_INT64 = (1n << 63n) - 1n;
const MIN_INT64 = -(1n << 63n);
const ROW_COUNT = EXECUTOR_BATCH_ROWS * 2 + 7;
const ALL_SQL = "SELECT id, big, blob, note FROM t ORDER BY id";
const PG_ADMIN = ["-h", "127.0.0.1", "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"];

/** Returns the values of row `id` as the executor should send them. */
function expectedRow(id: number): Value[] {
  const big = id % 2 === 0 ? MAX_INT64 - BigInt(id) : MIN_INT64 + BigInt(id);
  return [
    { intValue: BigInt(id) },
    { intValue: big },
    id % 7 === 0 ? { nullValue: true } : { bytesValue: Buffer.alloc(id % 10 === 0 ? 0 : id * 13, id % 251) },
    id % 5 === 0 ? { nullValue: true } : { stringValue: `row ${id} \u6f22` },
  ];
}

const collect = (executor: PostgresExecutor, request: Partial<ExecutionRequest>): ReturnType<typeof collectRows> => collectRows(executor, { sql: ALL_SQL, ...request });

describe("PostgreSQL executor rows", function () {
  this.timeout(60_000);
  const name = `ewii_test_${randomBytes(6).toString("hex")}`;
  let executor: PostgresExecutor;
  const encodedLengths: number[] = [];

  before(() => {
    execFileSync("psql", [...PG_ADMIN, "-d", "postgres", "-c", `CREATE DATABASE ${name}`]);
    const inserts = Array.from({ length: ROW_COUNT }, (_, i) => {
      const id = i + 1;
      const [, big, blob, note] = expectedRow(id);
      const blobSql = blob.bytesValue === undefined ? "NULL" : `'\\x${blob.bytesValue.toString("hex")}'::bytea`;
      const noteSql = note.stringValue === undefined ? "NULL" : `'${note.stringValue}'`;
      encodedLengths.push(Row.encode({ values: expectedRow(id) }).finish().length);
      return `(${id}, ${String(big.intValue)}, ${blobSql}, ${noteSql})`;
    });
    const script = `CREATE TABLE t (id integer PRIMARY KEY, big bigint, blob bytea, note text);\nINSERT INTO t VALUES ${inserts.join(",\n")};\n`;
    execFileSync("psql", [...PG_ADMIN, "-d", name, "-f", "-"], { input: script });
    executor = new PostgresExecutor(`postgres://postgres@127.0.0.1:5432/${name}`, [ALL_SQL]);
  });

  after(async () => {
    await executor?.close();
    dropDatabase(name);
  });

  it("bytea, NULLs and 64-bit integers arrive intact", async () => {
    const { rows, result, error } = await collect(executor, {});

    assert.equal(error, undefined);
    assert.equal(rows.length, ROW_COUNT);
    rows.forEach((encoded, i) => {
      assert.deepEqual(Buffer.from(encoded), Buffer.from(Row.encode({ values: expectedRow(i + 1) }).finish()), `row ${i + 1} differs`);
    });
    assert.equal(result?.byteCount, encodedLengths.reduce((sum, length) => sum + length, 0));
  });

  for (const maxRows of [1, EXECUTOR_BATCH_ROWS + 50]) {
    it(`row cap of ${maxRows} sends ${maxRows} rows`, async () => {
      const { rows, error } = await collect(executor, { maxRows });

      assert.equal(errorCodeOf(error), "ERR_QUERY_ROW_CAP");
      assert.equal(rows.length, maxRows);
    });
  }

  it("byte cap stops before the passing row", async () => {
    const sentRows = EXECUTOR_BATCH_ROWS + 20;
    const maxBytes = encodedLengths.slice(0, sentRows).reduce((sum, length) => sum + length, 0) + encodedLengths[sentRows] - 1;
    const { rows, error } = await collect(executor, { maxBytes });

    assert.equal(errorCodeOf(error), "ERR_QUERY_BYTE_CAP");
    assert.equal(rows.length, sentRows);
  });
});
