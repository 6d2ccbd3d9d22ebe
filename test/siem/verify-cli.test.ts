import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { openLog, sampleRecord, segmentLines, tempDir, writeSegmentLines } from "../audit/helpers.js";

const run = promisify(execFile);
const EWII = new URL("../../bin/ewii.js", import.meta.url).pathname;

async function verifyCli(dir: string): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [EWII, "audit", "verify", "--dir", dir]);
    return { code: 0, stdout };
  } catch (err: unknown) {
    const failed = err as { code: number; stdout: string };
    return { code: failed.code, stdout: failed.stdout };
  }
}

describe("ewii audit verify --dir", function () {
  this.timeout(60_000);

  const cases: Array<[string, (lines: string[]) => string[], string]> = [
    ["intact copy passes", (lines) => lines, "audit log OK"],
    ["altered record fails", (lines) => lines.map((line, i) => (i === 4 ? line.replace('"tenant":"acme"', '"tenant":"evil"') : line)), "FAILED at sequence 5: altered"],
    ["deleted record fails", (lines) => lines.filter((_, i) => i !== 4), "FAILED at sequence 5: missing"],
    ["reordered records fail", (lines) => [...lines.slice(0, 4), lines[5], lines[4], ...lines.slice(6)], "FAILED at sequence 5: reordered"],
  ];
  for (const [name, change, expected] of cases) {
    it(name, async () => {
      const dir = await tempDir();
      try {
        const log = await openLog(join(dir.path, "live"));
        await log.append(Array.from({ length: 10 }, (_, i) => sampleRecord(i)));
        await log.close();
        const copy = join(dir.path, "copy");
        await cp(join(dir.path, "live"), copy, { recursive: true });
        await writeSegmentLines(copy, change(await segmentLines(copy)));

        const result = await verifyCli(copy);

        assert.ok(result.stdout.includes(expected), result.stdout);
        assert.equal(result.code, expected.startsWith("audit log OK") ? 0 : 1);
      } finally {
        await dir.remove();
      }
    });
  }
});
