/**
 * Hub child process for bench/query.ts. It runs one hub with the dev
 * stack's hub credentials, so that the bench can read the CPU time of the
 * hub alone. The start message carries the hub config overrides; the other
 * messages are those of bench/server-child.ts.
 */
import "reflect-metadata";
import { silentLogger } from "../services/core/log.js";
import { loadHubConfig } from "../services/hub/config.js";
import { startHub } from "../services/hub/server.js";
import { serveFromChildProcess } from "./server-child.js";

export type HubChildRequest = { type: "start"; overrides: Record<string, unknown> } | { type: "cpu" } | { type: "close" };

serveFromChildProcess("query-hub.ts", (request: Extract<HubChildRequest, { type: "start" }>) => startHub(loadHubConfig(undefined, request.overrides), { logger: silentLogger() }));
