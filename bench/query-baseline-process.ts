/**
 * Baseline child process for bench/query.ts. It runs the plain server of
 * bench/query-baseline.ts alone, so that the bench can read the CPU time a
 * plain grpc-js mTLS server spends per query next to the hub's. Messages
 * from the parent: {type: "start", options}, {type: "cpu"}, {type: "close"}.
 * Replies: {type: "ready", address}, {type: "cpu", userMicros, systemMicros}.
 */
import { startBaselineServer, type BaselineOptions, type BaselineServer } from "./query-baseline.js";
import type { HubChildReply } from "./query-hub.js";

export type BaselineChildRequest = { type: "start"; options: BaselineOptions } | { type: "cpu" } | { type: "close" };

if (process.send === undefined) throw new TypeError("query-baseline-process.ts must run as a child process with an IPC channel");

let server: BaselineServer | undefined;

function reply(message: HubChildReply): void {
  process.send?.(message);
}

process.on("message", (request: BaselineChildRequest) => {
  switch (request.type) {
    case "start":
      startBaselineServer(request.options).then(
        (running) => {
          server = running;
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
      void (server?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      return;
  }
});

// The parent's exit closes the IPC channel.
process.on("disconnect", () => process.exit(0));
