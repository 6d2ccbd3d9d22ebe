// Runs one relay as its own process, for deployments without the ewii
// command and for tests and benchmarks that measure or kill the relay
// alone. Usage: node --import tsx services/relay/main.ts [config.yaml]
// The configuration also comes from EWII_RELAY_* variables. Once the relay
// listens, one JSON line with relay_id, address and pid goes to stdout;
// logs go to stderr.
import "reflect-metadata";
import { asError } from "../core/errors.js";
import { createLogger } from "../core/log.js";
import { loadRelayConfig } from "./config.js";
import { startRelay } from "./server.js";

const config = loadRelayConfig(process.argv[2]);
const logger = createLogger({ level: config.log_level, defaultMeta: { service: "relay" } });

try {
  const relay = await startRelay(config, { logger });
  process.stdout.write(JSON.stringify({ relay_id: relay.relayId, address: relay.address, pid: process.pid }) + "\n");
  const stop = (signal: string): void => {
    logger.info("stopping", { signal });
    relay
      .close()
      .catch((err: unknown) => logger.error("relay shutdown failed", { cause: asError(err).message }))
      .finally(() => process.exit(0));
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
} catch (err) {
  logger.error("relay failed to start", { cause: asError(err).message });
  process.exit(1);
}
