/**
 * Hub child process for bench/revocation.ts. It runs one real hub and
 * reports the monotonic time at which its deny set applies each
 * revocation. From that moment the hub refuses a session to the revoked
 * client: `startHub`'s `verifyClient` checks the same deny set on every
 * session handshake. Messages are `HubRequest` and `HubReply` in
 * revocation-ipc.ts.
 */
import "reflect-metadata";
import { silentLogger } from "../services/core/log.js";
import type { Revocation } from "../gen/ewii/ca/v1/ca.js";
import { loadHubConfig } from "../services/hub/config.js";
import { startHub, type RunningHub } from "../services/hub/server.js";
import { monotonicMs, type HubReply, type HubRequest } from "./revocation-ipc.js";

if (process.send === undefined) throw new TypeError("revocation-hub.ts must run as a child process with an IPC channel");

let hub: RunningHub | undefined;

function reply(message: HubReply): void {
  process.send?.(message);
}

/** Wraps the deny set's `apply` so every newly applied sequence is stamped as it lands. */
function observeDenySet(running: RunningHub): void {
  const denySet = running.denySet;
  const apply = denySet.apply.bind(denySet);
  denySet.apply = (revocation: Revocation): boolean => {
    const added = apply(revocation);
    if (added) reply({ type: "applied", sequence: Number(revocation.sequence), atMs: monotonicMs() });
    return added;
  };
}

process.on("message", (request: HubRequest) => {
  switch (request.type) {
    case "start":
      startHub(loadHubConfig(undefined, request.overrides), { logger: silentLogger() }).then(
        (running) => {
          hub = running;
          observeDenySet(running);
          reply({ type: "ready", address: running.address });
        },
        (err: unknown) => reply({ type: "failed", message: String(err) }),
      );
      return;
    case "match": {
      const denySet = hub?.denySet;
      const covered = request.subjects.filter(
        (subject) => denySet?.match({ spiffeId: subject.spiffeId, trustDomain: subject.trustDomain, serial: subject.serial, notBefore: new Date(subject.notBeforeMs) }) !== undefined,
      ).length;
      reply({ type: "matched", covered, total: request.subjects.length });
      return;
    }
    case "close":
      void (hub?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      return;
  }
});

// The parent's exit closes the IPC channel.
process.on("disconnect", () => process.exit(0));
