#!/usr/bin/env node
// Entry point of the `ewii` command: loads the TypeScript sources through tsx.
import { register } from "tsx/esm/api";

register();
// Child processes forked from here (the client's SQLite workers) run .ts
// files too, and fork() passes process.execArgv on. The loader is named by
// its file URL so that it resolves from any working directory.
process.execArgv.push("--import", import.meta.resolve("tsx"));
const { main, exitAfterFlush } = await import("../services/cli/main.ts");
await exitAfterFlush(await main(process.argv));
