import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { SinkSet } from "../../services/audit/export/sinks.js";
import { sinkConfigSchema } from "../../services/audit/export/sink-config.js";
import { silentLogger } from "../../services/core/log.js";
import { openLog, sampleRecord, tempDir } from "../audit/helpers.js";
import { waitFor } from "./rsyslog.js";

describe("jsonl file sink", () => {
  it("rotation keeps every line once", async () => {
    const dir = await tempDir();
    const log = await openLog(join(dir.path, "log"), { checkpointEveryRecords: 100 });
    const path = join(dir.path, "out", "audit.jsonl");
    const sinks = await SinkSet.start({ log, sinks: [sinkConfigSchema.parse({ name: "file", type: "jsonl-file", path, rotate_bytes: 8192, keep_files: 1000, batch_entries: 20 })], logger: silentLogger() });
    try {
      for (let i = 0; i < 400; i += 10) await log.append(Array.from({ length: 10 }, (_, j) => sampleRecord(i + j)));
      await waitFor(async () => sinks.status()[0].persistedSequence === log.head.sequence, "the file sink to catch up");
      const names = (await readdir(join(dir.path, "out"))).sort();
      const rotated = names.filter((name) => name !== "audit.jsonl");
      let lines: string[] = [];
      for (const name of [...rotated, "audit.jsonl"]) lines = lines.concat((await readFile(join(dir.path, "out", name), "utf8")).split("\n").filter((line) => line !== ""));
      const seen = lines.map((line) => Number((JSON.parse(line) as { sequence: string }).sequence));

      assert.ok(rotated.length > 1, `expected rotated files, got ${names.join(", ")}`);
      assert.deepEqual(seen, Array.from({ length: Number(log.head.sequence) }, (_, i) => i + 1));
    } finally {
      await sinks.stop();
      await log.close();
      await dir.remove();
    }
  });
});
