import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Path of the `ewii` entry point the tests run as a child process. */
export const EWII_BIN = new URL("../../bin/ewii.js", import.meta.url).pathname;
export const REPO_ROOT = new URL("../..", import.meta.url).pathname;

export interface EwiiResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Returns this process's environment without EWII_* variables, plus `extra`. */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("EWII_")));
  return { ...env, ...extra };
}

/**
 * Runs `./bin/ewii.js` with `args` and resolves with its exit code and
 * output, also on a non-zero exit. It must stay asynchronous, because the
 * services under test run in this process and serve the child's calls.
 */
export function runEwii(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<EwiiResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [EWII_BIN, ...args], { env: childEnv(options.env), cwd: options.cwd ?? REPO_ROOT, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== "number") {
        reject(err);
        return;
      }
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
    });
  });
}

/** Parses the stdout of a `--json` command, with the output in the failure message. */
export function parseJson<T>(result: EwiiResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`expected JSON on stdout (exit ${result.code}), got:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
}

export function makeTempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `ewii-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Returns a loopback port that was free a moment ago, for services that need a fixed address before they start. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A long-running `ewii` child process with its collected output. */
export interface EwiiProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output contains `text`; rejects when the process exits first or after `timeoutMs`. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export function startEwii(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): EwiiProcess {
  const child = spawn(process.execPath, [EWII_BIN, ...args], { env: childEnv(options.env), cwd: options.cwd ?? REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    output += chunk.toString("utf8");
    for (const listener of listeners) listener();
  };
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  child.on("exit", () => {
    for (const listener of listeners) listener();
  });
  return {
    child,
    output: () => output,
    waitForOutput(text, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for "${text}" from ewii ${args.join(" ")}; output:\n${output}`)), timeoutMs);
        const check = (): void => {
          if (output.includes(text)) finish();
          else if (child.exitCode !== null || child.signalCode !== null) finish(new Error(`ewii ${args.join(" ")} exited (${child.exitCode ?? child.signalCode}) before printing "${text}"; output:\n${output}`));
        };
        const finish = (err?: Error): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err === undefined) resolve();
          else reject(err);
        };
        listeners.add(check);
        check();
      });
    },
    stop() {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      });
    },
  };
}
