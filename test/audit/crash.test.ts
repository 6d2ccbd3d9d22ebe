import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createPublicKey } from "node:crypto";
import { CHECKPOINT_PUBLIC_KEY_FILE } from "../../services/audit/checkpoint.js";
import { verifyAuditLog } from "../../services/audit/verify.js";
import { openLog, tempDir } from "./helpers.js";
import type { TempDir } from "./helpers.js";

const APPENDER = fileURLToPath(new URL("./fixtures/append-loop.ts", import.meta.url));
/** Acknowledged records to wait for before the kill. */
const ACKS_BEFORE_KILL = 2000;

describe("audit log crash", () => {
  let dir: TempDir;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    await dir.remove();
  });

  it("SIGKILL loses no acknowledged record", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", APPENDER, dir.path], { stdio: ["ignore", "pipe", "inherit"] });
    const acknowledged: bigint[] = [];
    let partial = "";
    const enough = new Promise<void>((resolve) => {
      child.stdout.on("data", (chunk: Buffer) => {
        const text = partial + chunk.toString("utf8");
        const parts = text.split("\n");
        partial = parts.pop() ?? "";
        for (const part of parts) acknowledged.push(BigInt(part));
        if (acknowledged.length >= ACKS_BEFORE_KILL) resolve();
      });
    });
    const exited = once(child, "exit");
    await Promise.race([enough, exited]);
    child.kill("SIGKILL");
    const [, signal] = await exited;

    const log = await openLog(dir.path);
    const stored = new Set((await log.read(log.records.after(0, Number.MAX_SAFE_INTEGER))).map((record) => record.sequence));
    await log.close();
    const publicKey = createPublicKey(await readFile(join(dir.path, CHECKPOINT_PUBLIC_KEY_FILE), "utf8"));
    const result = await verifyAuditLog(dir.path, { publicKey });

    assert.equal(signal, "SIGKILL");
    assert.ok(acknowledged.length >= ACKS_BEFORE_KILL, `only ${acknowledged.length} records were acknowledged before the appender exited`);
    assert.deepEqual(acknowledged.filter((sequence) => !stored.has(sequence)), []);
    assert.equal(result.ok, true, result.detail);
  });
});
