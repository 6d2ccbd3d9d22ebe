import winston from "winston";

/**
 * Stable log field names. Every component logs ids under these keys so that
 * a log pipeline can join lines across services.
 */
export const LogField = {
  component: "component",
  tenant: "tenant",
  spiffeId: "spiffe_id",
  callerSpiffeId: "caller_spiffe_id",
  clientSpiffeId: "client_spiffe_id",
  serial: "serial",
  requestId: "request_id",
  sessionId: "session_id",
  relayId: "relay_id",
  trustDomain: "trust_domain",
  sequence: "sequence",
  method: "method",
  errorCode: "error_code",
  cause: "cause",
} as const;

export type Logger = winston.Logger;

export interface LoggerOptions {
  level?: string;
  /** Extra fields on every line, for example the service name. */
  defaultMeta?: Record<string, unknown>;
  /** Write to stderr (the default) or discard output entirely. */
  silent?: boolean;
  /** Write to this file instead of stderr. */
  file?: string;
}

/** Creates the root JSON logger of a process. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return winston.createLogger({
    level: options.level ?? process.env.EWII_LOG_LEVEL ?? "info",
    silent: options.silent ?? false,
    defaultMeta: options.defaultMeta,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json()),
    transports: [
      options.file === undefined
        ? new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "http", "verbose", "debug", "silly"] })
        : new winston.transports.File({ filename: options.file }),
    ],
  });
}

/** Returns a child logger that tags every line with its component. */
export function componentLogger(parent: Logger, component: string): Logger {
  return parent.child({ [LogField.component]: component });
}

/** A logger that drops everything, for tests and one-shot CLI calls. */
export function silentLogger(): Logger {
  return createLogger({ silent: true });
}
