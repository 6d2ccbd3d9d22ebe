import { sinkConfigSchema } from "../../services/audit/export/sink-config.js";
import type { SinkConfig } from "../../services/audit/export/sink-config.js";

/** Sink name of the export crash test; its cursor is `<log dir>/export/siem.cursor`. */
export const CRASH_SINK_NAME = "siem";

/**
 * Returns the TCP syslog sink of the export crash test, shared by the
 * child that is killed and the restart. Small batches and a short confirmation delay
 * make the cursor move many times before the kill.
 */
export function crashSinkConfig(port: number): SinkConfig[] {
  return [sinkConfigSchema.parse({ name: CRASH_SINK_NAME, type: "syslog-tcp", address: `127.0.0.1:${port}`, batch_entries: 50, confirm_after_ms: 50, backoff_initial_ms: 20, backoff_max_ms: 200 })];
}
