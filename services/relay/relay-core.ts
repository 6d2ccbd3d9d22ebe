import type { Revocation } from "../../gen/ewii/ca/v1/ca.js";
import type { ConnectResponse, OpenSessionResponse, RoutedFrame } from "../../gen/ewii/relay/v1/relay.js";
import { LogField, type Logger } from "../core/log.js";
import type { DenySet } from "../core/revocation/index.js";
import { isUnderPrefix } from "../core/revocation/index.js";
import type { RouteRegistry } from "../core/routes/index.js";
import { clientNotConnected } from "./errors.js";

/** A client's registered stream, as the relay core tracks it. */
export interface ClientStream {
  readonly spiffeId: string;
  readonly tenant: string;
  readonly trustDomain: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly connectedAt: Date;
  send(message: ConnectResponse): void;
  /** Ends the stream with an error status carrying `reason`. */
  close(code: string, reason: string): void;
}

/** A hub's session stream to one client. */
export interface HubStream {
  readonly spiffeId: string;
  readonly serial: string;
  readonly trustDomain: string;
  readonly notBefore: Date;
  send(message: OpenSessionResponse): void;
  close(code: string, reason: string): void;
}

interface SessionEntry {
  sessionKey: string;
  client: ClientStream;
  hub: HubStream;
}

export interface RelayCoreOptions {
  relayId: string;
  routes: RouteRegistry;
  denySet: DenySet;
  logger: Logger;
  /** Lease of a route in Redis or memory, in milliseconds; renewed at a third of it. */
  routeLeaseMs: number;
  now?: () => number;
}

/**
 * The relay's routing state: registered client streams, the hub sessions
 * bound to them, and the route leases. It forwards `RoutedFrame`s without
 * looking inside them: the relay holds no session key.
 */
export class RelayCore {
  private readonly clients = new Map<string, ClientStream>();
  private readonly sessions = new Map<string, SessionEntry>();
  private readonly sessionsByClient = new Map<ClientStream, Set<string>>();
  /** One timer for every stream's SVID expiry, armed for the earliest notAfter. */
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryTimerAtMs = Infinity;
  private readonly leaseTimer: NodeJS.Timeout;
  private renewing = false;
  private readonly now: () => number;
  readonly counters = { framesForwarded: 0, framesDropped: 0, streamsReplaced: 0, streamsClosedByRevocation: 0, sessionsClosedByRevocation: 0 };

  constructor(private readonly options: RelayCoreOptions) {
    this.now = options.now ?? Date.now;
    this.leaseTimer = setInterval(() => void this.renewLeases(), Math.max(50, Math.floor(options.routeLeaseMs / 3)));
    this.leaseTimer.unref();
  }

  get relayId(): string {
    return this.options.relayId;
  }

  listClients(): ClientStream[] {
    return [...this.clients.values()];
  }

  /**
   * Registers a client stream whose identity the caller has verified. A
   * second stream for the same SPIFFE ID replaces the first: mTLS already
   * proved that it has a valid SVID for that identity.
   */
  async registerClient(stream: ClientStream): Promise<void> {
    const previous = this.clients.get(stream.spiffeId);
    if (previous !== undefined) {
      this.counters.streamsReplaced++;
      this.options.logger.info("client stream replaced by a newer stream", { [LogField.clientSpiffeId]: stream.spiffeId, [LogField.serial]: stream.serial, previous_serial: previous.serial });
      this.dropClient(previous, "ERR_STREAM_REPLACED", "a newer stream for the same identity replaced this one");
    }
    this.clients.set(stream.spiffeId, stream);
    this.sessionsByClient.set(stream, new Set());

    if (stream.notAfter.getTime() < this.expiryTimerAtMs) this.armExpiryTimer(stream.notAfter.getTime());

    await this.options.routes.register(this.routeOf(stream));
    this.options.logger.info("client stream registered", { [LogField.clientSpiffeId]: stream.spiffeId, [LogField.tenant]: stream.tenant, [LogField.serial]: stream.serial, [LogField.relayId]: this.options.relayId });
  }

  /** Forgets a client stream that ended on its own (the client went away). */
  unregisterClient(stream: ClientStream, reason: string): void {
    if (this.clients.get(stream.spiffeId) !== stream) return;
    this.options.logger.info("client stream ended", { [LogField.clientSpiffeId]: stream.spiffeId, [LogField.serial]: stream.serial, reason });
    this.forget(stream, reason);
  }

  /** Binds a hub session to a registered client and tells the hub it is routed. */
  openSession(hub: HubStream, clientSpiffeId: string, sessionId: Uint8Array): string {
    const client = this.clients.get(clientSpiffeId);
    if (client === undefined) throw clientNotConnected(clientSpiffeId, this.options.relayId);
    const sessionKey = Buffer.from(sessionId).toString("hex");
    this.sessions.set(sessionKey, { sessionKey, client, hub });
    this.sessionsByClient.get(client)?.add(sessionKey);
    hub.send({ routed: { relayId: this.options.relayId, clientSerial: client.serial } });
    this.options.logger.debug("session routed", { [LogField.sessionId]: sessionKey, [LogField.clientSpiffeId]: clientSpiffeId, hub_spiffe_id: hub.spiffeId });
    return sessionKey;
  }

  /** Forwards a hub's frame to the session's client. */
  fromHub(sessionKey: string, frame: RoutedFrame): void {
    const session = this.sessions.get(sessionKey);
    if (session === undefined) {
      this.counters.framesDropped++;
      return;
    }
    this.counters.framesForwarded++;
    session.client.send({ frame });
  }

  /** Forwards a client's frame to the hub that owns the session. */
  fromClient(client: ClientStream, frame: RoutedFrame): void {
    const sessionKey = Buffer.from(frame.sessionId).toString("hex");
    const session = this.sessions.get(sessionKey);
    // A client may only write into its own sessions.
    if (session === undefined || session.client !== client) {
      this.counters.framesDropped++;
      return;
    }
    this.counters.framesForwarded++;
    session.hub.send({ frame });
  }

  /** Ends a session from the hub side and notifies the client. */
  closeSession(sessionKey: string, reason: string): void {
    const session = this.sessions.get(sessionKey);
    if (session === undefined) return;
    this.sessions.delete(sessionKey);
    this.sessionsByClient.get(session.client)?.delete(sessionKey);
    session.client.send({ frame: { sessionId: Buffer.from(sessionKey, "hex"), closeReason: reason } });
  }

  /**
   * Closes every client stream and hub session a new revocation covers.
   * Returns how many streams and sessions were closed.
   */
  enforceRevocation(revocation: Revocation): { streams: number; sessions: number } {
    let streams = 0;
    let sessions = 0;
    for (const client of [...this.clients.values()]) {
      const sequence = this.options.denySet.match(client);
      if (sequence === undefined) continue;
      streams++;
      this.dropClient(client, "ERR_REVOKED", `certificate revoked (revocation sequence ${sequence})`);
    }
    for (const session of [...this.sessions.values()]) {
      if (this.options.denySet.match(session.hub) === undefined) continue;
      sessions++;
      this.sessions.delete(session.sessionKey);
      this.sessionsByClient.get(session.client)?.delete(session.sessionKey);
      session.client.send({ frame: { sessionId: Buffer.from(session.sessionKey, "hex"), closeReason: "hub identity revoked" } });
      session.hub.close("ERR_REVOKED", "hub certificate revoked");
    }
    this.counters.streamsClosedByRevocation += streams;
    this.counters.sessionsClosedByRevocation += sessions;
    if (streams + sessions > 0) {
      this.options.logger.info("revocation enforced on live streams", { [LogField.sequence]: Number(revocation.sequence), streams_closed: streams, sessions_closed: sessions });
    }
    return { streams, sessions };
  }

  /** True when a SPIFFE ID is under the given prefix, on segment boundaries. */
  static covers(prefix: string, spiffeId: string): boolean {
    return isUnderPrefix(spiffeId, prefix);
  }

  async close(): Promise<void> {
    clearInterval(this.leaseTimer);
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    for (const client of [...this.clients.values()]) this.dropClient(client, "ERR_RELAY_SHUTTING_DOWN", "relay is shutting down; reconnect to another relay");
  }

  private dropClient(stream: ClientStream, code: string, reason: string): void {
    this.forget(stream, reason);
    stream.close(code, reason);
  }

  private forget(stream: ClientStream, reason: string): void {
    for (const sessionKey of this.sessionsByClient.get(stream) ?? []) {
      const session = this.sessions.get(sessionKey);
      this.sessions.delete(sessionKey);
      session?.hub.send({ frame: { sessionId: Buffer.from(sessionKey, "hex"), closeReason: `client stream closed: ${reason}` } });
    }
    this.sessionsByClient.delete(stream);

    if (this.clients.get(stream.spiffeId) === stream) {
      this.clients.delete(stream.spiffeId);
      this.options.routes.unregister(stream.spiffeId, this.options.relayId).catch((err: unknown) => {
        this.options.logger.warn("route removal failed; the lease will expire it", { [LogField.clientSpiffeId]: stream.spiffeId, [LogField.cause]: String(err) });
      });
    }
  }

  private routeOf(stream: ClientStream) {
    return {
      clientSpiffeId: stream.spiffeId,
      tenant: stream.tenant,
      relayId: this.options.relayId,
      serial: stream.serial,
      connectedAt: stream.connectedAt,
      expiresAt: new Date(this.now() + this.options.routeLeaseMs),
    };
  }

  /** Renews every route in one batch; a renewal still running when the timer fires again is not doubled. */
  private async renewLeases(): Promise<void> {
    if (this.renewing || this.clients.size === 0) return;
    this.renewing = true;
    try {
      await this.options.routes.registerMany([...this.clients.values()].map((stream) => this.routeOf(stream)));
    } catch (err) {
      this.options.logger.warn("route lease renewal failed; the next renewal retries", { streams: this.clients.size, [LogField.cause]: String(err) });
    } finally {
      this.renewing = false;
    }
  }

  /** Arms the single expiry timer for `atMs`; setTimeout delays are capped at 2^31 - 1 ms. */
  private armExpiryTimer(atMs: number): void {
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimerAtMs = atMs;
    this.expiryTimer = setTimeout(() => this.closeExpiredStreams(), Math.min(Math.max(0, atMs - this.now()), 2 ** 31 - 1));
    this.expiryTimer.unref();
  }

  /** Closes every stream whose SVID has expired, then arms the timer for the next notAfter. */
  private closeExpiredStreams(): void {
    this.expiryTimer = undefined;
    this.expiryTimerAtMs = Infinity;
    const now = this.now();
    let nextMs = Infinity;
    for (const stream of [...this.clients.values()]) {
      const notAfterMs = stream.notAfter.getTime();
      if (notAfterMs <= now) {
        this.options.logger.info("closing client stream: SVID expired", { [LogField.clientSpiffeId]: stream.spiffeId, [LogField.serial]: stream.serial });
        this.dropClient(stream, "ERR_SVID_EXPIRED", `the client SVID (serial ${stream.serial}) expired; the client must renew and reconnect`);
      } else if (notAfterMs < nextMs) {
        nextMs = notAfterMs;
      }
    }
    if (nextMs !== Infinity) this.armExpiryTimer(nextMs);
  }
}
