import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readCursor } from "../../services/audit/export/cursor.js";
import { SinkSet } from "../../services/audit/export/sinks.js";
import { silentLogger } from "../../services/core/log.js";
import { openLog, tempDir } from "../audit/helpers.js";
import type { TempDir } from "../audit/helpers.js";
import { CRASH_SINK_NAME, crashSinkConfig } from "./export-crash-config.js";
import { FrameReceiver } from "./frame-receiver.js";
import { waitFor } from "./rsyslog.js";

const APPENDER = fileURLToPath(new URL("./fixtures/export-append-loop.ts", import.meta.url));
/** Acknowledged records to wait for before the kill. */
const ACKS_BEFORE_KILL = 3000;
/** Persisted cursor to wait for before the kill, so the restart resumes mid-log. */
const CURSOR_BEFORE_KILL = 500n;

describe("audit export crash", function () {
  this.timeout(60_000);
  let dir: TempDir;
  let receiver: FrameReceiver;
  beforeEach(async () => {
    dir = await tempDir();
    receiver = new FrameReceiver({ keepSequences: true });
  });
  afterEach(async () => {
    await receiver.close();
    await dir.remove();
  });

  it("SIGKILL resumes from the cursor", async () => {
    const port = await receiver.listen();
    const logDir = join(dir.path, "log");
    const cursorPath = join(logDir, "export", `${CRASH_SINK_NAME}.cursor`);
    const child = spawn(process.execPath, ["--import", "tsx", APPENDER, logDir, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = once(child, "exit");
    const acknowledged: bigint[] = [];
    let partial = "";
    child.stdout.on("data", (chunk: Buffer) => {
      const parts = (partial + chunk.toString("utf8")).split("\n");
      partial = parts.pop() ?? "";
      for (const part of parts) acknowledged.push(BigInt(part));
    });
    const loaded = waitFor(async () => acknowledged.length >= ACKS_BEFORE_KILL && ((await readCursor(cursorPath))?.sequence ?? 0n) >= CURSOR_BEFORE_KILL, "appends and a persisted cursor before the kill");
    await Promise.race([loaded, exited.then(() => Promise.reject(new Error("the appender exited before the kill")))]);
    child.kill("SIGKILL");
    const [, signal] = await exited;
    await waitFor(async () => receiver.openConnections === 0, "the killed connection to close");
    const cursorAtKill = (await readCursor(cursorPath))?.sequence ?? 0n;
    const framesBeforeRestart = receiver.sequences.length;
    const sentBeforeKill = receiver.sequences.reduce((max, sequence) => (sequence > max ? sequence : max), 0n);

    const log = await openLog(logDir, { checkpointEveryRecords: 50 });
    const sinks = await SinkSet.start({ log, sinks: crashSinkConfig(port), logger: silentLogger() });
    let head: bigint;
    try {
      head = log.head.sequence;
      await waitFor(async () => new Set(receiver.sequences).size >= Number(head), `sequence ${head} at the receiver`);
    } finally {
      await sinks.stop();
      await log.close();
    }
    const received = new Set(receiver.sequences);
    const counts = new Map<bigint, number>();
    for (const sequence of receiver.sequences) counts.set(sequence, (counts.get(sequence) ?? 0) + 1);
    const duplicates = [...counts].filter(([, count]) => count > 1).map(([sequence]) => sequence);
    const missing = Array.from({ length: Number(head) }, (_, i) => BigInt(i + 1)).filter((sequence) => !received.has(sequence));

    assert.equal(signal, "SIGKILL");
    assert.ok(cursorAtKill >= CURSOR_BEFORE_KILL, `the cursor was at ${cursorAtKill} at the kill`);
    assert.ok(sentBeforeKill > cursorAtKill, `nothing past the cursor ${cursorAtKill} was sent before the kill`);
    assert.equal(receiver.sequences[framesBeforeRestart], cursorAtKill + 1n);
    assert.deepEqual(missing, []);
    assert.deepEqual(acknowledged.filter((sequence) => !received.has(sequence)), []);
    assert.deepEqual(duplicates.filter((sequence) => sequence <= cursorAtKill), []);
    assert.equal(receiver.sequences.length, receiver.frames);
  });
});
