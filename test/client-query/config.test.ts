import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { allowedHubMatcher, loadClientConfig } from "../../services/client/config.js";
import { CHINOOK_SQLITE, writeConfig } from "./helpers.js";

const DEMO_CONFIG = new URL("../../examples/client/acme-client.yaml", import.meta.url).pathname;
const SMALL_QUERY = { sql: "SELECT 1" };

function loadError(dataset: Record<string, unknown>): string {
  return loadErrorOf(writeConfig(dataset).file);
}

function loadErrorOf(file: string): string {
  try {
    loadClientConfig(file);
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail("the configuration loaded");
}

describe("client config", () => {
  it("demo config loads its queries file", () => {
    const config = loadClientConfig(DEMO_CONFIG);
    assert.deepEqual(Object.keys(config.datasets.chinook!.queries).sort(), ["customer_invoices", "employee_list", "invoice_lines_all", "revenue_by_country", "top_tracks_by_genre"]);
  });

  it("demo config fills defaults", () => {
    const config = loadClientConfig(DEMO_CONFIG);
    assert.deepEqual(config.allowed_hubs, ["/service/hub"]);
    assert.equal(config.datasets.chinook!.max_rows, 10000);
  });

  it("resolves paths against the file", () => {
    const { file, dir } = writeConfig({ engine: "sqlite", path: "data.sqlite", queries: { q: SMALL_QUERY } });
    writeFileSync(join(dir, "data.sqlite"), "");
    const dataset = loadClientConfig(file).datasets.chinook!;
    assert.equal(dataset.engine === "sqlite" ? dataset.path : "", join(dir, "data.sqlite"));
  });

  it("names a missing key", () => {
    const { dir } = writeConfig({ engine: "sqlite", path: CHINOOK_SQLITE, queries: { q: SMALL_QUERY } });
    const file = join(dir, "no-relays.yaml");
    writeFileSync(file, stringify({ identity_dir: "id", ca: "127.0.0.1:1", datasets: { d: { engine: "sqlite", path: "x", queries: { q: SMALL_QUERY } } } }));
    assert.throws(() => loadClientConfig(file), /key "relays"/);
  });

  it("rejects a missing SQLite file", () => {
    const { file, dir } = writeConfig({ engine: "sqlite", path: "nope.sqlite", queries: { q: SMALL_QUERY } });
    const message = loadErrorOf(file);
    assert.ok(message.includes('key "datasets.chinook.path"'), message);
    assert.ok(message.includes(join(dir, "nope.sqlite")), message);
    assert.ok(message.includes("ENOENT"), message);
  });

  it("rejects a folder as SQLite file", () => {
    const { file, dir } = writeConfig({ engine: "sqlite", path: ".", queries: { q: SMALL_QUERY } });
    const message = loadErrorOf(file);
    assert.ok(message.includes('key "datasets.chinook.path"'), message);
    assert.ok(message.includes(`${dir} is not a regular file`), message);
  });

  it("rejects an unknown engine", () => {
    assert.match(loadError({ engine: "mysql", url: "mysql://x", queries: { q: SMALL_QUERY } }), /engine must be "sqlite"/);
  });

  it("rejects an unknown key", () => {
    assert.match(loadError({ engine: "sqlite", path: "x", queries: { q: SMALL_QUERY }, max_row: 5 }), /max_row/);
  });

  it("unknown key error names the fix", () => {
    const message = loadError({ engine: "sqlite", path: CHINOOK_SQLITE, queries: { q: SMALL_QUERY }, max_row: 5 });
    assert.match(message, /key "datasets\.chinook" in .*client\.yaml/);
    assert.match(message, /unknown key "max_row"; remove it or correct its spelling/);
  });

  it("missing SQLite path names the fix", () => {
    const message = loadError({ engine: "sqlite", queries: { q: SMALL_QUERY } });
    assert.match(message, /key "datasets\.chinook\.path"/);
    assert.match(message, /path must name the SQLite database file/);
  });

  for (const limit of [0, -1]) {
    it(`rejects limits of ${limit}`, () => {
      const message = loadError({ engine: "sqlite", path: CHINOOK_SQLITE, max_rows: limit, max_bytes: limit, queries: { q: { sql: "SELECT 1", max_rows: limit } } });
      assert.match(message, /key "datasets\.chinook\.max_rows" in .*: max_rows must be at least 1/);
      assert.match(message, /key "datasets\.chinook\.max_bytes" in .*: max_bytes must be at least 1/);
      assert.match(message, /key "datasets\.chinook\.queries\.q\.max_rows" in .*: max_rows must be at least 1/);
    });
  }

  it("rejects an undeclared placeholder", () => {
    assert.match(loadError({ engine: "sqlite", path: "x", queries: { q: { sql: "SELECT :a" } } }), /datasets\.chinook\.queries\.q\.params.*:a/);
  });

  it("rejects an unused parameter", () => {
    assert.match(loadError({ engine: "sqlite", path: "x", queries: { q: { sql: "SELECT 1", params: { a: { type: "text" } } } } }), /params\.a/);
  });

  for (const [engine, sql, found] of [
    ["sqlite", "SELECT * FROM Genre WHERE GenreId = ?", "? at offset 36"],
    ["sqlite", "SELECT * FROM Genre WHERE GenreId = ?1", "?1 at offset 36"],
    ["sqlite", "SELECT * FROM Genre WHERE Name = @name", "@name at offset 33"],
    ["sqlite", "SELECT * FROM Genre WHERE Name = $name", "$name at offset 33"],
    ["postgres", "SELECT * FROM genre WHERE genre_id = $1", "$1 at offset 37"],
  ] as const) {
    it(`rejects ${engine} placeholder ${found.split(" ")[0]}`, () => {
      const dataset = engine === "sqlite" ? { engine, path: CHINOOK_SQLITE } : { engine, url: "postgres://reader@127.0.0.1:5432/chinook" };
      const message = loadError({ ...dataset, queries: { q: { sql } } });

      assert.match(message, /key "datasets\.chinook\.queries\.q\.sql"/);
      assert.ok(message.includes(`${found} is not a :name placeholder; write placeholders as :name`), message);
    });
  }

  it("rejects a second statement", () => {
    const message = loadError({ engine: "sqlite", path: CHINOOK_SQLITE, queries: { q: { sql: "SELECT 1; SELECT 2" } } });

    assert.match(message, /second statement after the semicolon at offset 8; approve one statement per query/);
  });

  it("accepts a final semicolon and jsonb operators", () => {
    const queries = {
      ending: { sql: "SELECT 1;  -- done\n" },
      jsonb: { sql: "SELECT doc ? 'key', doc ?| array['a'], '$1;x' FROM docs WHERE id = :id", params: { id: { type: "integer" } } },
      quoted: { sql: "SELECT $tag$ ; ? $1 $tag$ AS text" },
    };

    assert.doesNotThrow(() => loadClientConfig(writeConfig({ engine: "postgres", url: "postgres://reader@127.0.0.1:5432/chinook", queries }).file));
  });

  it("rejects a dataset without queries", () => {
    assert.match(loadError({ engine: "sqlite", path: "x" }), /approves no query/);
  });

  it("rejects a query defined twice", () => {
    const { dir } = writeConfig({ engine: "sqlite", path: "x", queries: { q: SMALL_QUERY } });
    writeFileSync(join(dir, "queries.yaml"), stringify({ queries: { q: SMALL_QUERY } }));
    assert.match(loadError({ engine: "sqlite", path: "x", queries: { q: SMALL_QUERY }, queries_file: join(dir, "queries.yaml") }), /both inline and in/);
  });

  for (const sql of ["DELETE FROM Genre", "ATTACH DATABASE 'other.sqlite' AS other", "PRAGMA query_only = OFF", "BEGIN", "/* SELECT */ DELETE FROM Genre", "-- only a comment"]) {
    it(`rejects SQLite statement: ${sql}`, () => {
      const message = loadError({ engine: "sqlite", path: CHINOOK_SQLITE, queries: { q: { sql } } });
      assert.match(message, /key "datasets\.chinook\.queries\.q\.sql"/);
      assert.match(message, /starting with SELECT, WITH, VALUES or TABLE/);
    });
  }

  for (const sql of ["COPY (SELECT 1) TO PROGRAM 'true'", "COPY genre TO STDOUT", "DO $$ BEGIN END $$", "LOCK TABLE genre", "/* /* */ SELECT 1 */ COPY genre TO STDOUT"]) {
    it(`rejects PostgreSQL statement: ${sql}`, () => {
      const message = loadError({ engine: "postgres", url: "postgres://reader@127.0.0.1:5432/chinook", queries: { q: { sql } } });
      assert.match(message, /key "datasets\.chinook\.queries\.q\.sql"/);
      assert.match(message, /starting with SELECT, WITH, VALUES or TABLE/);
    });
  }

  it("accepts read queries after comments", () => {
    const queries = {
      select: { sql: "-- note\n/* block */ SELECT 1" },
      parenthesized: { sql: "(SELECT 1) UNION (SELECT 2)" },
      with: { sql: "WITH a AS (SELECT 1 AS x) SELECT x FROM a" },
      values: { sql: "values (1)" },
    };
    const config = loadClientConfig(writeConfig({ engine: "sqlite", path: CHINOOK_SQLITE, queries }).file);
    assert.deepEqual(Object.keys(config.datasets.chinook!.queries).sort(), ["parenthesized", "select", "values", "with"]);
  });

  it("rejects a write in the queries file", () => {
    const { dir } = writeConfig({ engine: "sqlite", path: CHINOOK_SQLITE, queries: { q: SMALL_QUERY } });
    writeFileSync(join(dir, "queries.yaml"), stringify({ queries: { wipe: { sql: "DELETE FROM Genre" } } }));
    const message = loadError({ engine: "sqlite", path: CHINOOK_SQLITE, queries_file: join(dir, "queries.yaml") });
    assert.match(message, /key "datasets\.chinook\.queries\.wipe\.sql" in .*queries\.yaml/);
  });

  for (const url of ["postgres://app:s3cret-pw@127.0.0.1:5432/chinook", "postgresql://app@127.0.0.1/chinook?sslmode=disable&password=s3cret-pw"]) {
    it(`rejects a URL password: ${url.includes("?") ? "query" : "user info"}`, () => {
      const message = loadError({ engine: "postgres", url, queries: { q: SMALL_QUERY } });
      assert.match(message, /key "datasets\.chinook\.url"/);
      assert.match(message, /PGPASSWORD/);
      assert.ok(!message.includes("s3cret-pw"), "the message must not echo the password");
    });
  }

  it("accepts a URL without password", () => {
    const urls = ["postgres://app@127.0.0.1:5432/chinook", "postgres://app@[::1]:5432/chinook?sslmode=require", "postgresql:///chinook?host=/var/run/postgresql"];
    for (const url of urls) {
      const dataset = loadClientConfig(writeConfig({ engine: "postgres", url, queries: { q: SMALL_QUERY } }).file).datasets.chinook!;
      assert.equal(dataset.engine === "postgres" ? dataset.url : "", url);
    }
  });

  it("names a bad key in the queries file", () => {
    const { dir } = writeConfig({ engine: "sqlite", path: "x", queries: { q: SMALL_QUERY } });
    writeFileSync(join(dir, "queries.yaml"), stringify({ queries: { q: { sql: "SELECT :a", params: { a: { type: "date" } } } } }));
    assert.match(loadError({ engine: "sqlite", path: "x", queries_file: join(dir, "queries.yaml") }), /key "queries\.q\.params\.a\.type" in .*queries\.yaml/);
  });
});

describe("allowed hubs", () => {
  const allowed = allowedHubMatcher(["/service/hub", "/hubs/", "spiffe://operator.example/admin/hub"], "operator.example");

  it("accepts an exact path", () => {
    assert.ok(allowed("spiffe://operator.example/service/hub"));
  });

  it("accepts under a prefix", () => {
    assert.ok(allowed("spiffe://operator.example/hubs/eu-1"));
  });

  it("accepts an absolute ID", () => {
    assert.ok(allowed("spiffe://operator.example/admin/hub"));
  });

  it("rejects a longer path without prefix", () => {
    assert.equal(allowed("spiffe://operator.example/service/hub2"), false);
  });

  it("rejects another trust domain", () => {
    assert.equal(allowed("spiffe://acme.tenants.operator.example/service/hub"), false);
  });

  it("rejects an entry of another trust domain", () => {
    assert.throws(() => allowedHubMatcher(["spiffe://evil.example/hub"], "operator.example"), /outside the operator trust domain/);
  });
});
