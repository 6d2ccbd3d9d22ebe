import { strict as assert } from "node:assert";
import Database from "better-sqlite3";
import { status } from "@grpc/grpc-js";
import pg from "pg";
import type { AuditRecord } from "../../gen/ewii/audit/v1/audit.js";
import type { SessionMessage, Value } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { auditClient } from "../../services/cli/connect.js";
import { errorCodeOf } from "../../services/core/errors.js";
import { callUnary } from "../../services/core/grpc/index.js";
import type { QueryRunner } from "../../services/client/session-endpoint.js";
import type { DevStack } from "../../services/dev/stack.js";
import { DEMO_CLIENT_PATH } from "../../services/dev/demo-client.js";
import { CHINOOK_SQLITE, createChinookDatabase, dropDatabase } from "../client-query/helpers.js";
import { addClient, catalogQueries, cellsText, hubQuery, startTestStack, type ExtraClient } from "./helpers.js";

const DEMO_CASES: { queryId: string; params: Record<string, Value>; sqliteParams: Record<string, unknown>; pgParams: unknown[] }[] = [
  { queryId: "revenue_by_country", params: {}, sqliteParams: {}, pgParams: [] },
  { queryId: "customer_invoices", params: { customer_id: { intValue: 12n } }, sqliteParams: { customer_id: 12 }, pgParams: [12] },
  { queryId: "top_tracks_by_genre", params: { genre: { stringValue: "Rock" }, limit: { intValue: 5n } }, sqliteParams: { genre: "Rock", limit: 5 }, pgParams: ["Rock", 5] },
];

async function auditRecords(stack: DevStack, requestFilter: (record: AuditRecord) => boolean = () => true): Promise<AuditRecord[]> {
  const audit = auditClient(stack.admin);
  try {
    const response = await callUnary(audit.query.bind(audit), { tenant: "acme", principal: "", client: "", decision: "", limit: 1000, afterSequence: 0n });
    return response.records.filter(requestFilter);
  } finally {
    audit.close();
  }
}

async function expectRefusal(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal(errorCodeOf(err), code);
    return true;
  });
}

describe("query path end to end", function () {
  this.timeout(120_000);
  let stack: Awaited<ReturnType<typeof startTestStack>>;

  before(async () => {
    stack = await startTestStack();
  });

  after(async () => {
    await stack?.cleanup();
  });

  describe("on SQLite", () => {
    const catalog = catalogQueries("sqlite");
    for (const demo of DEMO_CASES) {
      it(`${demo.queryId} matches direct SQLite`, async () => {
        const result = await hubQuery(stack, DEMO_CLIENT_PATH, demo.queryId, demo.params);
        const db = new Database(CHINOOK_SQLITE, { readonly: true });
        const direct = db.prepare(catalog[demo.queryId].sql).raw().all(demo.sqliteParams) as unknown[][];
        db.close();
        assert.ok(direct.length > 0);
        assert.deepEqual(cellsText(result.rows), cellsText(direct));
        assert.equal(result.summary?.rowCount, BigInt(direct.length));
      });
    }
  });

  describe("on PostgreSQL", () => {
    let database: { name: string; url: string };
    let client: ExtraClient;
    let direct: pg.Client;

    before(async () => {
      database = createChinookDatabase();
      client = await addClient(stack, { path: "/client/site-pg", dataset: { engine: "postgres", url: database.url, queries: catalogQueries("postgres", ["customer_emails"]) } });
      direct = new pg.Client({ connectionString: database.url });
      await direct.connect();
    });

    after(async () => {
      await client?.stop();
      await direct?.end();
      if (database !== undefined) dropDatabase(database.name);
    });

    const catalog = catalogQueries("postgres");
    for (const demo of DEMO_CASES) {
      it(`${demo.queryId} matches direct PostgreSQL`, async () => {
        const result = await hubQuery(stack, "/client/site-pg", demo.queryId, demo.params);
        const positional = catalog[demo.queryId].sql.replace(/:customer_id/g, "$1").replace(/:genre/g, "$1").replace(/:limit/g, "$2");
        const rows = (await direct.query({ text: positional, values: demo.pgParams, rowMode: "array" })).rows as unknown[][];
        assert.ok(rows.length > 0);
        assert.deepEqual(cellsText(result.rows), cellsText(rows));
      });
    }
  });

  describe("refusals", () => {
    it("denied query never reaches the client", async () => {
      const started = stack.client.endpoint.counters.queriesStarted;
      await expectRefusal(hubQuery(stack, DEMO_CLIENT_PATH, "employee_list"), "ERR_POLICY_DENIED");
      assert.equal(stack.client.endpoint.counters.queriesStarted, started);
      const denied = await auditRecords(stack, (record) => record.queryId === "employee_list");
      assert.equal(denied.length, 1);
      assert.equal(denied[0].event, "query.denied");
      assert.equal(denied[0].rule, "deny-employee-list");
    });

    it("client allow-list refusal is audited", async () => {
      await expectRefusal(hubQuery(stack, DEMO_CLIENT_PATH, "customer_emails"), "ERR_QUERY_UNKNOWN");
      const records = await auditRecords(stack, (record) => record.queryId === "customer_emails");
      assert.deepEqual(records.map((record) => record.event), ["query.started", "query.failed"]);
      assert.equal(records[1].outcome, "ERR_QUERY_UNKNOWN");
    });

    it("SQL in a text parameter stays a value", async () => {
      const result = await hubQuery(stack, DEMO_CLIENT_PATH, "top_tracks_by_genre", { genre: { stringValue: "Rock' OR 1=1 --" }, limit: { intValue: 5n } });
      assert.equal(result.rows.length, 0);
    });

    it("wrong parameter type is invalid", async () => {
      const started = stack.client.endpoint.counters.queriesStarted;
      await assert.rejects(hubQuery(stack, DEMO_CLIENT_PATH, "customer_invoices", { customer_id: { stringValue: "1; DROP TABLE Invoice" } }), (err: { code?: number; details?: string }) => {
        assert.equal(errorCodeOf(err), "ERR_PARAMS_INVALID");
        assert.equal(err.code, status.INVALID_ARGUMENT);
        assert.match(err.details ?? "", /customer_id/);
        assert.doesNotMatch(err.details ?? "", /DROP TABLE/);
        return true;
      });

      assert.equal(stack.client.endpoint.counters.queriesStarted, started);
    });

    it("query outside the catalog is not found", async () => {
      await assert.rejects(hubQuery(stack, DEMO_CLIENT_PATH, "drop_everything"), (err: { code?: number; details?: string }) => {
        assert.equal(errorCodeOf(err), "ERR_CATALOG_QUERY_UNKNOWN");
        assert.equal(err.code, status.NOT_FOUND);
        assert.match(err.details ?? "", /"drop_everything" is not in the catalog of dataset "chinook"/);
        return true;
      });

      const records = await auditRecords(stack, (record) => record.queryId === "drop_everything");
      assert.deepEqual(
        records.map((record) => [record.event, record.rule]),
        [["query.denied", "default-deny"]],
      );
    });

    it("oversized parameter names the parameter", async () => {
      const started = stack.client.endpoint.counters.queriesStarted;
      await assert.rejects(hubQuery(stack, DEMO_CLIENT_PATH, "top_tracks_by_genre", { genre: { stringValue: "x".repeat(100_000) }, limit: { intValue: 5n } }), (err: { details?: string }) => {
        assert.equal(errorCodeOf(err), "ERR_PARAMS_TOO_LARGE");
        assert.match(err.details ?? "", /"genre"/);
        return true;
      });
      assert.equal(stack.client.endpoint.counters.queriesStarted, started);
    });

    it("client caps stop a result with RESOURCE_EXHAUSTED", async () => {
      const queries = catalogQueries("sqlite");
      const capped = await addClient(stack, {
        path: "/client/site-capped",
        dataset: { engine: "sqlite", path: CHINOOK_SQLITE, max_bytes: 200, queries: { ...queries, top_tracks_by_genre: { ...queries.top_tracks_by_genre, max_rows: 3 } } },
      });
      try {
        for (const [queryId, params, code] of [
          ["revenue_by_country", {}, "ERR_QUERY_BYTE_CAP"],
          ["top_tracks_by_genre", { genre: { stringValue: "Rock" }, limit: { intValue: 10n } }, "ERR_QUERY_ROW_CAP"],
        ] as const) {
          await assert.rejects(hubQuery(stack, "/client/site-capped", queryId, params), (err: { code?: number; details?: string }) => {
            assert.equal(errorCodeOf(err), code);
            assert.equal(err.code, status.RESOURCE_EXHAUSTED);
            assert.match(err.details ?? "", /raise max_(rows|bytes) in the client configuration/);
            return true;
          });
        }
      } finally {
        await capped.stop();
      }
    });

    it("unknown client is unreachable", async () => {
      await assert.rejects(hubQuery(stack, "/client/nowhere", "revenue_by_country"), (err: { details?: string }) => {
        assert.equal(errorCodeOf(err), "ERR_CLIENT_UNREACHABLE");
        assert.match(err.details ?? "", /: ERR_CLIENT_NOT_CONNECTED: client spiffe:\/\/acme\.tenants\.operator\.example\/client\/nowhere has no stream on relay/);
        assert.equal((err.details ?? "").split("ERR_CLIENT_NOT_CONNECTED").length, 2, `the relay's code appears more than once: ${err.details}`);
        return true;
      });
    });

    it("client of another tenant is rejected", async () => {
      await expectRefusal(hubQuery(stack, "spiffe://globex.tenants.operator.example/client/x", "revenue_by_country"), "ERR_CLIENT_WRONG_TENANT");
    });

    it("client path with dot segments is invalid", async () => {
      const recordsBefore = await auditRecords(stack);
      await expectRefusal(hubQuery(stack, "/client/../client/site-1", "revenue_by_country"), "ERR_CLIENT_INVALID");
      await expectRefusal(hubQuery(stack, "spiffe://acme.tenants.operator.example/client/site-1?x=1", "revenue_by_country"), "ERR_CLIENT_INVALID");
      assert.equal((await auditRecords(stack)).length, recordsBefore.length);
    });

    it("oversized client path is invalid", async () => {
      // A 2,040-character path passes the field limit but makes a SPIFFE ID above 2,048 bytes.
      await expectRefusal(hubQuery(stack, `/client/${"c".repeat(2032)}`, "revenue_by_country"), "ERR_CLIENT_INVALID");
      await expectRefusal(hubQuery(stack, `/client/${"c".repeat(3000)}`, "revenue_by_country"), "ERR_REQUEST_INVALID");
    });

    it("oversized query id is invalid", async () => {
      await assert.rejects(hubQuery(stack, DEMO_CLIENT_PATH, "q".repeat(3000)), (err: { details?: string }) => {
        assert.equal(errorCodeOf(err), "ERR_REQUEST_INVALID");
        assert.match(err.details ?? "", /"queryId" is 3000 characters, above the limit of 2048/);
        return true;
      });
    });
  });

  describe("result signatures", () => {
    let forger: ExtraClient;

    before(async () => {
      // A client whose runner alters the signed summary after signing.
      const tamper = (runner: QueryRunner): QueryRunner => ({
        handle: (request, out, signal) =>
          runner.handle(
            request,
            {
              send: (message: SessionMessage) => {
                if (message.summary !== undefined) message.summary.rowCount += 1n;
                return out.send(message);
              },
            },
            signal,
          ),
      });
      forger = await addClient(stack, { path: "/client/site-forger", dataset: { engine: "sqlite", path: CHINOOK_SQLITE, queries: catalogQueries("sqlite", ["customer_emails"]) }, wrap: tamper });
    });

    after(async () => {
      await forger?.stop();
    });

    it("altered summary fails verification and is audited", async () => {
      await expectRefusal(hubQuery(stack, "/client/site-forger", "revenue_by_country"), "ERR_RESULT_SIGNATURE_INVALID");
      const records = await auditRecords(stack, (record) => record.clientSpiffeId === forger.spiffeId);
      assert.equal(records.at(-1)?.event, "query.failed");
      assert.equal(records.at(-1)?.outcome, "ERR_RESULT_SIGNATURE_INVALID");
    });
  });

  describe("audit log", () => {
    it("chain and signatures verify after the run", async () => {
      const audit = auditClient(stack.admin);
      const report = await callUnary(audit.verify.bind(audit), { fromSequence: 0n, toSequence: 0n });
      audit.close();
      assert.equal(report.ok, true, report.detail);
      assert.ok(Number(report.checked) > 5);
    });

    it("completed records carry the client signature", async () => {
      const completed = await auditRecords(stack, (record) => record.event === "query.completed");
      assert.ok(completed.length >= 3);
      for (const record of completed) {
        assert.ok(record.clientSignature.length > 0);
        assert.ok(record.clientCertDer.length > 0);
        assert.match(record.paramsDigest, /^[0-9a-f]{64}$/);
        assert.equal(record.paramsRawJson, "");
      }
    });
  });
});

describe("query path without audit", function () {
  this.timeout(120_000);
  let stack: Awaited<ReturnType<typeof startTestStack>>;

  before(async () => {
    stack = await startTestStack();
    await stack.audit.close();
  });

  after(async () => {
    await stack?.cleanup();
  });

  it("query is refused and nothing runs", async () => {
    const started = stack.client.endpoint.counters.queriesStarted;
    await expectRefusal(hubQuery(stack, DEMO_CLIENT_PATH, "revenue_by_country"), "ERR_AUDIT_UNAVAILABLE");
    assert.equal(stack.client.endpoint.counters.queriesStarted, started);
  });
});
