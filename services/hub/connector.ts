import type { KeyObject } from "node:crypto";
import { status } from "@grpc/grpc-js";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import type { OpenSessionRequest, OpenSessionResponse } from "../../gen/ewii/relay/v1/relay.js";
import { RelayServiceClient } from "../../gen/ewii/relay/v1/relay.js";
import { EwiiError, asError, errorCodeOf, isEwiiError } from "../core/errors.js";
import { callUnary, channelOptions, createClientCredentials, dialTarget } from "../core/grpc/index.js";
import { LogField, type Logger } from "../core/log.js";
import type { RouteEntry, RouteRegistry } from "../core/routes/index.js";
import { HandshakeReplayCache, HubHandshake, type PeerVerifier } from "../core/session/index.js";
import { HubConnection } from "./connection.js";
import type { ClientConnection, ClientConnector } from "./ports.js";

export interface HubIdentity {
  certChainPem: string;
  privateKeyPem: string;
  certChainDer: Uint8Array[];
  privateKey: KeyObject;
  operatorBundlePem: string;
}

export interface SessionConnectorOptions {
  operatorTrustDomain: string;
  routes: RouteRegistry;
  /** Relay addresses to try when the route registry has no relay for a client. */
  staticRelays: string[];
  /** Current SVID of the hub; read for every new relay channel and handshake. */
  identity: () => HubIdentity;
  /** Validates a client's chain against its tenant bundle and the deny set. */
  verifyClient: PeerVerifier;
  logger: Logger;
  /** Time allowed to route and complete a handshake, in milliseconds. */
  connectTimeoutMs: number;
}

const RELAY_PATH = "/service/relay";
/** Deadline of a ListStreams call to one relay, in milliseconds. */
const LIST_STREAMS_DEADLINE_MS = 3_000;

/**
 * Opens end-to-end sessions to clients through the relays that hold their
 * streams, and reuses one open session per client for every query.
 */
export class SessionConnector implements ClientConnector {
  private readonly open = new Map<string, HubConnection>();
  private readonly opening = new Map<string, Promise<HubConnection>>();
  private readonly relayClients = new Map<string, RelayServiceClient>();
  private readonly replayCache = new HandshakeReplayCache();

  constructor(private readonly options: SessionConnectorOptions) {}

  connections(): ClientConnection[] {
    return [...this.open.values()];
  }

  async connect(clientSpiffeId: string, signal: AbortSignal): Promise<ClientConnection> {
    const existing = this.open.get(clientSpiffeId);
    if (existing !== undefined && !existing.closed) return existing;
    let opening = this.opening.get(clientSpiffeId);
    if (opening === undefined) {
      opening = this.establish(clientSpiffeId).finally(() => this.opening.delete(clientSpiffeId));
      this.opening.set(clientSpiffeId, opening);
    }
    if (signal.aborted) throw signal.reason;
    return opening;
  }

  /**
   * Asks each static relay for the client streams it holds, so ListClients
   * works without a shared route registry. A relay that does not respond is
   * logged and left out.
   */
  async listStaticRelayStreams(): Promise<RouteEntry[]> {
    const lists = await Promise.all(
      this.options.staticRelays.map(async (address) => {
        const client = this.relayClient(address);
        try {
          const response = await callUnary(client.listStreams.bind(client), {}, { deadlineMs: LIST_STREAMS_DEADLINE_MS });
          return response.streams.map((stream) => ({
            clientSpiffeId: stream.spiffeId,
            tenant: stream.tenant,
            relayId: stream.relayId,
            serial: stream.serial,
            connectedAt: stream.connectedAt ?? new Date(0),
            expiresAt: new Date(Date.now() + LIST_STREAMS_DEADLINE_MS),
          }));
        } catch (err) {
          this.options.logger.warn("relay did not list its streams", { relay_address: address, [LogField.cause]: asError(err).message });
          return [];
        }
      }),
    );
    return lists.flat();
  }

  /** Drops cached relay channels, for example after the hub's SVID was renewed. */
  resetChannels(): void {
    for (const client of this.relayClients.values()) client.close();
    this.relayClients.clear();
  }

  async close(): Promise<void> {
    for (const connection of [...this.open.values()]) connection.close("hub shutting down");
    this.resetChannels();
  }

  private async candidateRelays(clientSpiffeId: string): Promise<{ relayId: string; address: string }[]> {
    const routes = await this.options.routes.lookup(clientSpiffeId);
    const addresses = routes.length > 0 ? await this.options.routes.relays() : new Map<string, string>();
    const candidates = routes
      .sort((a, b) => a.connectedAt.getTime() - b.connectedAt.getTime())
      .flatMap((route) => {
        const address = addresses.get(route.relayId);
        return address === undefined ? [] : [{ relayId: route.relayId, address }];
      });
    if (candidates.length > 0) return candidates;
    return this.options.staticRelays.map((address) => ({ relayId: "", address }));
  }

  private async establish(clientSpiffeId: string): Promise<HubConnection> {
    const candidates = await this.candidateRelays(clientSpiffeId);
    const failures: string[] = [];
    for (const candidate of candidates) {
      try {
        return await this.establishVia(clientSpiffeId, candidate.address);
      } catch (err) {
        const code = isEwiiError(err) ? err.code : errorCodeOf(err);
        failures.push(`${candidate.address}: ${code === undefined ? asError(err).message : `${code}: ${asError(err).message}`}`);
        this.options.logger.warn("session through relay failed; trying the next relay", { [LogField.clientSpiffeId]: clientSpiffeId, relay_address: candidate.address, [LogField.cause]: asError(err).message });
      }
    }
    const causes = failures.length === 0 ? "no relay holds a route to it; check that the client is running and connected, and enroll it again if it was revoked" : failures.join("; ");
    throw new EwiiError("ERR_CLIENT_UNREACHABLE", `client ${clientSpiffeId} is not reachable through any relay: ${causes}`, { status: status.UNAVAILABLE });
  }

  private relayClient(address: string): RelayServiceClient {
    let client = this.relayClients.get(address);
    if (client !== undefined) return client;
    const identity = this.options.identity();
    const expected = `spiffe://${this.options.operatorTrustDomain}${RELAY_PATH}`;
    const credentials = createClientCredentials({
      tls: { certChainPem: identity.certChainPem, privateKeyPem: identity.privateKeyPem },
      trustedCasPem: identity.operatorBundlePem,
      expectServer: (spiffeId) => spiffeId === expected || spiffeId.startsWith(expected + "/"),
    });
    client = new RelayServiceClient(dialTarget(address), credentials, channelOptions(address));
    this.relayClients.set(address, client);
    return client;
  }

  private establishVia(clientSpiffeId: string, address: string): Promise<HubConnection> {
    const identity = this.options.identity();
    const stream: ClientDuplexStream<OpenSessionRequest, OpenSessionResponse> = this.relayClient(address).openSession();
    const { message, hs } = HubHandshake.start({
      certChainDer: identity.certChainDer,
      privateKey: identity.privateKey,
      verifyPeer: this.options.verifyClient,
      replayCache: this.replayCache,
      targetSpiffeId: clientSpiffeId,
      logger: this.options.logger,
    });
    // Every sealed frame carries the handshake's session id, so the relay
    // must route by that id. With any other id it drops every frame.
    const sessionId = message.sessionId;

    return new Promise<HubConnection>((resolve, reject) => {
      let relayId = "";
      let settled = false;
      const fail = (error: EwiiError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stream.removeAllListeners("data");
        stream.cancel();
        reject(error);
      };
      const timer = setTimeout(() => fail(new EwiiError("ERR_SESSION_TIMEOUT", `no handshake reply from client ${clientSpiffeId} through relay ${address} within ${this.options.connectTimeoutMs} ms`, { status: status.DEADLINE_EXCEEDED })), this.options.connectTimeoutMs);

      stream.on("data", (response: OpenSessionResponse) => {
        if (settled) return;
        if (response.routed !== undefined) {
          relayId = response.routed.relayId;
          stream.write({ frame: { sessionId, handshake: message } });
          return;
        }
        const frame = response.frame;
        if (frame?.closeReason !== undefined) {
          fail(new EwiiError("ERR_SESSION_REFUSED", `client ${clientSpiffeId} refused the session: ${frame.closeReason}`, { status: status.PERMISSION_DENIED }));
          return;
        }
        if (frame?.handshake === undefined) return;
        try {
          const session = hs.finish(frame.handshake);
          settled = true;
          clearTimeout(timer);
          stream.removeAllListeners("data");
          stream.removeAllListeners("error");
          const connection = new HubConnection(clientSpiffeId, relayId, session, frame.handshake.certChainDer[0], stream, this.options.logger, (closed) => {
            if (this.open.get(clientSpiffeId) === closed) this.open.delete(clientSpiffeId);
          });
          this.open.set(clientSpiffeId, connection);
          this.options.logger.info("client session established", { [LogField.clientSpiffeId]: clientSpiffeId, [LogField.relayId]: relayId, [LogField.serial]: connection.clientSerial });
          resolve(connection);
        } catch (err) {
          fail(err instanceof EwiiError ? err : new EwiiError("ERR_HANDSHAKE_FAILED", `handshake with client ${clientSpiffeId} failed`, { status: status.UNAVAILABLE, cause: err }));
        }
      });
      stream.on("error", (err: unknown) => {
        // The relay's status details already read "CODE: message"; the code is kept apart so it is not repeated.
        const code = errorCodeOf(err) ?? "ERR_RELAY_FAILED";
        const details = (err as { details?: unknown }).details;
        const text = typeof details === "string" && details !== "" ? details : asError(err).message;
        const reason = text.startsWith(`${code}: `) ? text.slice(code.length + 2) : text;
        fail(new EwiiError(code, reason, { status: status.UNAVAILABLE, cause: err }));
      });
      stream.write({ open: { clientSpiffeId, sessionId } });
    });
  }
}
