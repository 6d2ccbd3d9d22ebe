/**
 * The IPC loop of a bench child process that runs one server alone, so
 * that the parent can read the server's CPU time. Messages from the
 * parent: {type: "start", ...}, {type: "cpu"}, {type: "close"}. Replies:
 * {type: "ready", address}, {type: "failed", message},
 * {type: "cpu", userMicros, systemMicros}.
 */

export type ServerChildReply = { type: "ready"; address: string } | { type: "cpu"; userMicros: number; systemMicros: number } | { type: "failed"; message: string };

/** A server the child started: its address and how to stop it. */
export interface ChildServer {
  address: string;
  close(): Promise<void>;
}

/** Handles the parent's messages; `start` receives the start message and starts the server. */
export function serveFromChildProcess<Start extends { type: "start" }>(script: string, start: (request: Start) => Promise<ChildServer>): void {
  if (process.send === undefined) throw new TypeError(`${script} must run as a child process with an IPC channel`);
  let server: ChildServer | undefined;
  const reply = (message: ServerChildReply): void => {
    process.send?.(message);
  };

  process.on("message", (request: Start | { type: "cpu" } | { type: "close" }) => {
    switch (request.type) {
      case "start":
        start(request as Start).then(
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
}
