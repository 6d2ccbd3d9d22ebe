import { strict as assert } from "node:assert";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { durationMs, hostPort, loadConfig } from "../../services/core/config.js";

const schema = z.strictObject({
  listen: hostPort.default("127.0.0.1:7000"),
  data_dir: z.string().min(1),
  interval_ms: durationMs.default(1000),
});

function writeYaml(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "ewii-config-")), "service.yaml");
  writeFileSync(file, text);
  return file;
}

function configError(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  assert.fail("expected loadConfig to throw");
}

describe("config loading", () => {
  it("fills defaults", () => {
    const config = loadConfig(schema, { file: writeYaml("data_dir: /var/lib/x\n"), env: {} });
    assert.equal(config.listen, "127.0.0.1:7000");
    assert.equal(config.interval_ms, 1000);
  });

  it("environment overrides the file", () => {
    const config = loadConfig(schema, { file: writeYaml("data_dir: /a\ninterval_ms: 5\n"), envKeys: { interval_ms: "X_INTERVAL" }, env: { X_INTERVAL: "250" } });
    assert.equal(config.interval_ms, 250);
  });

  it("overrides win over the environment", () => {
    const config = loadConfig(schema, { envKeys: { data_dir: "X_DATA" }, env: { X_DATA: "/env" }, overrides: { data_dir: "/flag" } });
    assert.equal(config.data_dir, "/flag");
  });

  it("error names key, file and variable", () => {
    const file = writeYaml("data_dir: /a\nlisten: nowhere\n");
    const err = configError(() => loadConfig(schema, { file, envKeys: { listen: "X_LISTEN" }, env: {} }));
    assert.equal(err.code, "ERR_CONFIG_INVALID");
    assert.match(err.message, /key "listen"/);
    assert.match(err.message, new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.match(err.message, /X_LISTEN/);
    assert.match(err.message, /host:port/);
  });

  it("duration of zero names the fix", () => {
    const err = configError(() => loadConfig(schema, { file: writeYaml("data_dir: /a\ninterval_ms: 0\n"), env: {} }));

    assert.match(err.message, /key "interval_ms" in .*: expected a duration above 0 ms/);
  });

  it("duration as text names the fix", () => {
    const err = configError(() => loadConfig(schema, { file: writeYaml("data_dir: /a\ninterval_ms: soon\n"), env: {} }));

    assert.match(err.message, /key "interval_ms" in .*: expected a number of milliseconds, for example 5000/);
  });

  it("missing required key is named", () => {
    const err = configError(() => loadConfig(schema, { env: {} }));
    assert.match(err.message, /key "data_dir"/);
  });

  it("unknown key is rejected", () => {
    const err = configError(() => loadConfig(schema, { file: writeYaml("data_dir: /a\nlisten_adress: 1.2.3.4:5\n"), env: {} }));
    assert.match(err.message, /listen_adress/);
  });

  it("invalid YAML is reported", () => {
    const err = configError(() => loadConfig(schema, { file: writeYaml("data_dir: [unclosed\n"), env: {} }));
    assert.equal(err.code, "ERR_CONFIG_INVALID");
    assert.match(err.message, /not valid YAML/);
  });

  it("YAML error hides the file's lines", () => {
    const err = configError(() => loadConfig(schema, { file: writeYaml("data_dir: /a\nurl: postgres://reader:s3cret-pw@db/app\n  listen: x\n"), env: {} }));

    assert.match(err.message, /not valid YAML: .* at line 2, column \d+; fix the YAML syntax/);
    assert.doesNotMatch(err.message, /s3cret-pw/);
  });

  it("a YAML list is not a config", () => {
    const err = configError(() => loadConfig(schema, { file: writeYaml("- a\n- b\n"), env: {} }));
    assert.match(err.message, /mapping/);
  });

  it("missing file is reported", () => {
    const err = configError(() => loadConfig(schema, { file: "/nonexistent/ewii.yaml", env: {} }));
    assert.equal(err.code, "ERR_CONFIG_UNREADABLE");
    assert.match(err.message, /ENOENT/);
  });
});
