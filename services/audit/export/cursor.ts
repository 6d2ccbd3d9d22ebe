/**
 * A sink's export cursor: the last sequence it delivered, kept in a small
 * file that is replaced atomically (write a temporary file, fsync it,
 * rename it over the old one, fsync the directory), so a crash leaves
 * either the old cursor or the new one.
 */
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { EwiiError } from "../../core/errors.js";
import { syncDirectory } from "../segments.js";

export const CURSOR_ERROR_CODE = "ERR_AUDIT_CURSOR_INVALID";

export interface Cursor {
  /** Last delivered sequence; 0 when nothing was delivered. */
  sequence: bigint;
  /** Log the sequence belongs to; a cursor of another log is rejected. */
  logId: string;
}

/** Reads a cursor file; returns undefined when it does not exist. */
export async function readCursor(path: string): Promise<Cursor | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const record = parsed as { sequence?: unknown; log_id?: unknown } | undefined;
  if (typeof record?.sequence !== "string" || !/^(0|[1-9][0-9]{0,19})$/.test(record.sequence) || typeof record.log_id !== "string") {
    throw new EwiiError(CURSOR_ERROR_CODE, `the export cursor ${path} is damaged; delete it to export the whole log again, or write {"sequence":"N","log_id":"..."} to resume after sequence N`);
  }
  return { sequence: BigInt(record.sequence), logId: record.log_id };
}

/** Replaces the cursor file atomically. */
export async function writeCursor(path: string, cursor: Cursor): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.tmp`;
  const handle = await open(temporary, "w", 0o600);
  try {
    await handle.writeFile(`${JSON.stringify({ sequence: cursor.sequence.toString(10), log_id: cursor.logId })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  await syncDirectory(dirname(path));
}
