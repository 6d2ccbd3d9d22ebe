/**
 * Hub child process for bench/query.ts. It runs one hub with the dev
 * stack's hub credentials, so that the bench can read the CPU time of the
 * hub alone. Messages from the parent: {type: "start", overrides} with the
 * hub config overrides, {type: "cpu"}, {type: "close"}. Replies:
 * {type: "ready", address}, {type: "cpu", userMicros, systemMicros}.
 */
import "reflect-metadata";
import { silentLogger } from "../services/core/log.js";
import { loadHubConfig } from "../services/hub/config.js";
import { startHub, type RunningHub } from "../services/hub/server.js";

export type HubChildRequest = { type: "start"; overrides: Record<string, unknown> } | { type: "cpu" } | { type: "close" };
export type HubChildReply = { type: "ready"; address: string } | { type: "cpu"; userMicros: number; systemMicros: number } | { type: "failed"; message: string };

if (process.send === undefined) throw new TypeError("query-hub.ts must run as a child process with an IPC channel");

let hub: RunningHub | undefined;

function reply(message: HubChildReply): void {
  process.send?.(message);
}

process.on("message", (request: HubChildRequest) => {
  switch (request.type) {
    case "start":
      startHub(loadHubConfig(undefined, request.overrides), { logger: silentLogger() }).then(
        (running) => {
          hub = running;
          reply({ type: "ready", address: running.address });
        },
        (err: unknown) => reply({ type: "failed", message: String(err) }),
      );
      return;
    case "cpu": {
      const usage = process.cpuUsage();
      reply({ type: "cpu", userMicros: usage.user, systemMicros: usage.system });
      return;
    }
    case "close":
      void (hub?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      return;
  }
});

// The parent's exit closes the IPC channel.
process.on("disconnect", () => process.exit(0));
