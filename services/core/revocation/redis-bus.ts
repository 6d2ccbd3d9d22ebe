import { Revocation } from "../../../gen/ewii/ca/v1/ca.js";
import { asError } from "../errors.js";
import { LogField, type Logger } from "../log.js";
import type { RevocationBus, RevocationBusEvents, RevocationHandler } from "./bus.js";
import type { RedisConnection, RedisConnector } from "./redis-connection.js";

/** Redis pub/sub channel of revocations; each message is a protobuf-encoded ewii.ca.v1.Revocation. */
export const REVOCATION_CHANNEL = "ewii:revocations";
/** Maximum wait for one PUBLISH before it counts as failed, in milliseconds. */
export const PUBLISH_TIMEOUT_MS = 1_000;
/**
 * Maximum wait for a reconnecting publisher connection to become ready
 * before a publish fails, in milliseconds. It is short because Revoke waits
 * for the publish, and subscribers catch up with ListRevocations anyway.
 */
export const PUBLISH_RECONNECT_WAIT_MS = 50;

export interface RedisRevocationBusOptions {
  /** Opens a connection; called once for publishing and once per subscription. */
  connect: RedisConnector;
  logger: Logger;
  channel?: string;
}

/**
 * Revocation fan-out over Redis pub/sub. Publishing and each subscription
 * use their own connections, because a subscribed connection accepts no
 * other commands. After every (re)connection the subscriber subscribes
 * again and only then reports onReconnect, so the catch-up that follows
 * overlaps the live channel and no revocation falls between them.
 */
export class RedisRevocationBus implements RevocationBus {
  private publisher: RedisConnection | undefined;
  private publisherWasReady = false;
  private readonly subscribers = new Set<RedisConnection>();
  private readonly channel: string;
  /** Messages on the channel that did not decode as a Revocation. */
  malformedMessages = 0;

  constructor(private readonly options: RedisRevocationBusOptions) {
    this.channel = options.channel ?? REVOCATION_CHANNEL;
  }

  async publish(revocation: Revocation): Promise<void> {
    if (this.publisher === undefined) {
      this.publisher = this.options.connect();
      this.publisher.on("ready", () => {
        this.publisherWasReady = true;
      });
      this.publisher.on("error", (err: unknown) => this.options.logger.debug("revocation publisher connection error", { [LogField.cause]: asError(err).message }));
    }
    // The first connection may take up to the publish timeout (the command
    // waits in ioredis's offline queue). After a lost connection, wait only
    // briefly for the reconnection instead of holding up Revoke for the
    // whole timeout, because subscribers catch up anyway.
    if (this.publisherWasReady) await waitForReady(this.publisher, PUBLISH_RECONNECT_WAIT_MS, revocation.sequence);
    const payload = Buffer.from(Revocation.encode(revocation).finish());
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`PUBLISH to ${this.channel} timed out after ${PUBLISH_TIMEOUT_MS} ms`)), PUBLISH_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.publisher.publish(this.channel, payload), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async subscribe(handler: RevocationHandler, events: RevocationBusEvents): Promise<() => Promise<void>> {
    const connection = this.options.connect();
    this.subscribers.add(connection);
    const logger = this.options.logger;
    let subscribed = false;
    let stopped = false;

    connection.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      if (channel.toString() !== this.channel) return;
      let revocation: Revocation;
      try {
        revocation = Revocation.decode(message);
      } catch (err: unknown) {
        this.malformedMessages++;
        logger.warn("ignored a malformed message on the revocation channel", { [LogField.cause]: asError(err).message, bytes: message.length, malformed_total: this.malformedMessages });
        return;
      }
      handler(revocation);
    });
    connection.on("ready", () => {
      connection
        .subscribe(this.channel)
        .then(() => {
          if (stopped) return;
          subscribed = true;
          logger.info("subscribed to the revocation channel", { channel: this.channel });
          events.onReconnect();
        })
        .catch((err: unknown) => logger.warn("subscribing to the revocation channel failed; retrying on the next connection", { [LogField.cause]: asError(err).message }));
    });
    connection.on("close", () => {
      if (!subscribed || stopped) return;
      subscribed = false;
      events.onDisconnect("the Redis connection of the revocation subscription closed");
    });
    connection.on("error", (err: unknown) => {
      // ioredis retries on its own; the state change is reported by "close".
      logger.debug("revocation subscriber connection error", { [LogField.cause]: asError(err).message });
    });

    return async () => {
      stopped = true;
      this.subscribers.delete(connection);
      await quietly(connection);
    };
  }

  async close(): Promise<void> {
    const connections = [...this.subscribers];
    this.subscribers.clear();
    if (this.publisher !== undefined) connections.push(this.publisher);
    this.publisher = undefined;
    this.publisherWasReady = false;
    await Promise.all(connections.map(quietly));
  }
}

/**
 * Resolves once `connection` is ready, waiting at most `waitMs` while it
 * connects or reconnects; rejects at once if it was closed for good.
 */
async function waitForReady(connection: RedisConnection, waitMs: number, sequence: bigint): Promise<void> {
  if (connection.status === "ready") return;
  if (connection.status === "end") throw new Error(`Redis connection is closed; revocation ${sequence} not published`);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      connection.off("ready", onReady);
      reject(new Error(`Redis connection is ${connection.status} and was not ready within ${waitMs} ms; revocation ${sequence} not published`));
    }, waitMs);
    function onReady(): void {
      clearTimeout(timer);
      resolve();
    }
    connection.once("ready", onReady);
  });
}

/**
 * Ends a connection at once. QUIT would wait in the offline queue while
 * Redis is down, and nothing pending here needs flushing.
 */
export async function quietly(connection: RedisConnection): Promise<void> {
  connection.disconnect();
}
