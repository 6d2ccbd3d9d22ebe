import type { KeyObject } from "node:crypto";
import type { RoutedFrame } from "../../gen/ewii/relay/v1/relay.js";
import { SessionMessage } from "../../gen/ewii/tunnel/v1/tunnel.js";
import type { QueryRequest } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { status } from "@grpc/grpc-js";
import { EwiiError, asError, errorCodeOf, isEwiiError } from "../core/errors.js";
import { LogField, type Logger } from "../core/log.js";
import { ClientHandshake, HandshakeReplayCache, SessionErrorCode, type PeerVerifier, type Session } from "../core/session/index.js";

/** Returns the stable code of a thrown EwiiError or of a failed gRPC call. */
function codeOf(err: unknown): string | undefined {
  return isEwiiError(err) ? err.code : errorCodeOf(err);
}

/** Query execution as the endpoint uses it; the QueryHandler implements it. */
export interface QueryRunner {
  handle(request: QueryRequest, out: { send(message: SessionMessage): Promise<void>; sendEncoded?(plaintext: Uint8Array): Promise<void> }, signal: AbortSignal): Promise<void>;
}

/** The frame path back to the hub: the relay link the session arrived on. */
export interface FrameSender {
  send(frame: RoutedFrame): boolean;
}

export interface EndpointIdentity {
  spiffeId: string;
  certChainDer: Uint8Array[];
  privateKey: KeyObject;
}

export interface ClientSessionEndpointOptions {
  /** Current SVID; read for every new session so a renewed SVID is used. */
  identity: () => EndpointIdentity;
  /** Validates a hub's chain against the operator bundle pinned at enrollment. */
  verifyHub: PeerVerifier;
  isAllowedHub: (spiffeId: string) => boolean;
  runner: QueryRunner;
  logger: Logger;
  now?: () => number;
}

interface OpenSession {
  session: Session;
  sender: FrameSender;
  inFlight: Map<string, AbortController>;
}

/**
 * The client's end of hub sessions. It completes handshakes, opens and
 * seals frames, runs queries, and cancels them when the hub requests it or
 * the session ends. Frames that fail authentication, replays and frames older than the
 * replay window are dropped and counted.
 */
export class ClientSessionEndpoint {
  private readonly sessions = new Map<string, OpenSession>();
  private readonly replayCache = new HandshakeReplayCache();
  readonly counters = { handshakesAccepted: 0, handshakesRejected: 0, framesRejected: 0, queriesStarted: 0 };

  constructor(private readonly options: ClientSessionEndpointOptions) {}

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Queries started and not yet finished, over every session. */
  get inFlightQueries(): number {
    let count = 0;
    for (const open of this.sessions.values()) count += open.inFlight.size;
    return count;
  }

  onFrame(frame: RoutedFrame, sender: FrameSender): void {
    const sessionKey = Buffer.from(frame.sessionId).toString("hex");
    if (frame.handshake !== undefined) this.acceptHandshake(sessionKey, frame, sender);
    else if (frame.sealed !== undefined) this.openFrame(sessionKey, frame, sender);
    else if (frame.closeReason !== undefined) this.endSession(sessionKey, frame.closeReason);
  }

  /**
   * Ends the sessions whose frames travel over `sender`, for example when
   * that relay link went down. The hub's relay stream fails too and the hub
   * opens a new session through another relay, so these sessions can never
   * deliver another frame and their queries are stopped.
   */
  closeSessionsOf(sender: FrameSender, reason: string): void {
    for (const [key, open] of [...this.sessions]) {
      if (open.sender === sender) this.endSession(key, reason);
    }
  }

  /** Ends every session, for example after the client's identity changed. */
  closeAll(reason: string): void {
    for (const key of [...this.sessions.keys()]) this.endSession(key, reason);
  }

  private acceptHandshake(sessionKey: string, frame: RoutedFrame, sender: FrameSender): void {
    const identity = this.options.identity();
    try {
      // The relay routes by the frame's session id and the session seals
      // with the handshake's, so the two must agree.
      if (!Buffer.from(frame.handshake!.sessionId).equals(Buffer.from(frame.sessionId))) {
        throw new EwiiError(SessionErrorCode.handshakeMalformed, `handshake session_id differs from the routed session id ${sessionKey}; the relay mixed up two sessions`, { status: status.INVALID_ARGUMENT });
      }
      const { message, session, hubSpiffeId } = ClientHandshake.respond(
        {
          certChainDer: identity.certChainDer,
          privateKey: identity.privateKey,
          verifyPeer: this.options.verifyHub,
          replayCache: this.replayCache,
          selfSpiffeId: identity.spiffeId,
          isAllowedHub: this.options.isAllowedHub,
          now: this.options.now,
          logger: this.options.logger,
        },
        frame.handshake!,
      );
      this.endSession(sessionKey, "replaced by a new handshake");
      this.sessions.set(sessionKey, { session, sender, inFlight: new Map() });
      this.counters.handshakesAccepted++;
      sender.send({ sessionId: frame.sessionId, handshake: message });
      this.options.logger.info("hub session established", { [LogField.sessionId]: sessionKey, hub_spiffe_id: hubSpiffeId });
    } catch (err) {
      this.counters.handshakesRejected++;
      const code = codeOf(err) ?? "ERR_HANDSHAKE_FAILED";
      this.options.logger.warn("hub handshake rejected", { [LogField.sessionId]: sessionKey, [LogField.errorCode]: code, [LogField.cause]: asError(err).message });
      sender.send({ sessionId: frame.sessionId, closeReason: `${code}: ${asError(err).message}` });
    }
  }

  private openFrame(sessionKey: string, frame: RoutedFrame, sender: FrameSender): void {
    const open = this.sessions.get(sessionKey);
    if (open === undefined) {
      this.counters.framesRejected++;
      return;
    }
    let message: SessionMessage;
    try {
      message = open.session.open(frame.sealed!);
    } catch (err) {
      this.counters.framesRejected++;
      this.options.logger.warn("session frame rejected", { [LogField.sessionId]: sessionKey, [LogField.errorCode]: codeOf(err) ?? "ERR_FRAME_INVALID" });
      return;
    }
    open.sender = sender;

    if (message.query !== undefined) this.startQuery(sessionKey, open, message.query);
    else if (message.cancel !== undefined) open.inFlight.get(Buffer.from(message.cancel.requestId).toString("hex"))?.abort();
    else if (message.heartbeat !== undefined) this.send(sessionKey, open, { heartbeat: { sentUnixMs: BigInt((this.options.now ?? Date.now)()) } });
  }

  private startQuery(sessionKey: string, open: OpenSession, request: QueryRequest): void {
    const requestKey = Buffer.from(request.requestId).toString("hex");
    const controller = new AbortController();
    open.inFlight.set(requestKey, controller);
    this.counters.queriesStarted++;
    const deadlineMs = Number(request.deadlineUnixMs);
    let deadlineTimer: NodeJS.Timeout | undefined;
    if (deadlineMs > 0) {
      deadlineTimer = setTimeout(() => controller.abort(), Math.max(0, deadlineMs - Date.now()));
      deadlineTimer.unref();
    }
    const out = {
      send: async (message: SessionMessage) => this.send(sessionKey, open, message),
      sendEncoded: async (plaintext: Uint8Array) => this.sendPlaintext(sessionKey, open, plaintext),
    };
    this.options.runner
      .handle(request, out, controller.signal)
      .catch((err: unknown) => {
        this.options.logger.error("query handler failed", { [LogField.requestId]: requestKey, [LogField.cause]: asError(err).message });
      })
      .finally(() => {
        if (deadlineTimer !== undefined) clearTimeout(deadlineTimer);
        open.inFlight.delete(requestKey);
      });
  }

  private send(sessionKey: string, open: OpenSession, message: SessionMessage): void {
    if (this.sessions.get(sessionKey) !== open) return;
    this.sendPlaintext(sessionKey, open, SessionMessage.encode(message).finish());
  }

  /** Seals an encoded SessionMessage and sends it, unless the session has ended. */
  private sendPlaintext(sessionKey: string, open: OpenSession, plaintext: Uint8Array): void {
    if (this.sessions.get(sessionKey) !== open) return;
    const sealed = open.session.sealBytes(plaintext);
    open.sender.send({ sessionId: Buffer.from(sessionKey, "hex"), sealed });
  }

  private endSession(sessionKey: string, reason: string): void {
    const open = this.sessions.get(sessionKey);
    if (open === undefined) return;
    this.sessions.delete(sessionKey);
    for (const controller of open.inFlight.values()) controller.abort();
    open.session.close();
    this.options.logger.info("hub session ended", { [LogField.sessionId]: sessionKey, reason });
  }
}
