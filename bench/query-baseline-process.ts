/**
 * Baseline child process for bench/query.ts. It runs the plain server of
 * bench/query-baseline.ts alone, so that the bench can read the CPU time a
 * plain grpc-js mTLS server spends per query next to the hub's. The start
 * message carries the server options; the other messages are those of
 * bench/server-child.ts.
 */
import { startBaselineServer, type BaselineOptions } from "./query-baseline.js";
import { serveFromChildProcess } from "./server-child.js";

export type BaselineChildRequest = { type: "start"; options: BaselineOptions } | { type: "cpu" } | { type: "close" };

serveFromChildProcess("query-baseline-process.ts", (request: Extract<BaselineChildRequest, { type: "start" }>) => startBaselineServer(request.options));
