import { X509Certificate } from "node:crypto";
import { status } from "@grpc/grpc-js";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type {
  ConnectRequest,
  ConnectResponse,
  ListStreamsRequest,
  ListStreamsResponse,
  OpenSessionRequest,
  OpenSessionResponse,
  RelayServiceServer,
} from "../../gen/ewii/relay/v1/relay.js";
import { EwiiError } from "../core/errors.js";
import type { PeerIdentity, RpcContext, RpcEdge } from "../core/grpc/index.js";
import { LogField } from "../core/log.js";
import type { DenySet } from "../core/revocation/index.js";
import { DeadPeerSweeper } from "./dead-peer-sweeper.js";
import type { WatchedPeer } from "./dead-peer-sweeper.js";
import { notAClient, notAHub, revoked, staleRevocations } from "./errors.js";
import type { ClientStream, HubStream, RelayCore } from "./relay-core.js";

export interface RelayServiceDeps {
  core: RelayCore;
  denySet: DenySet;
  /** True while revocation state is unconfirmed past its bound: new streams are refused. */
  isRevocationStateStale: () => { stale: boolean; reason: string };
  operatorTrustDomain: string;
  /** Interval at which clients are asked to send heartbeats, in milliseconds. */
  heartbeatIntervalMs: number;
  /** A client stream silent for this long is closed, in milliseconds. */
  deadPeerTimeoutMs: number;
  now?: () => number;
}

const HUB_PATH = "/service/hub";

/** Maps a tenant trust domain ("acme.tenants.operator.example") to its tenant name. */
export function tenantOfTrustDomain(trustDomain: string, operatorTrustDomain: string): string | undefined {
  const suffix = `.tenants.${operatorTrustDomain}`;
  if (!trustDomain.endsWith(suffix)) return undefined;
  const name = trustDomain.slice(0, -suffix.length);
  return name.length > 0 && !name.includes(".") ? name : undefined;
}

export function isHubIdentity(peer: PeerIdentity, operatorTrustDomain: string): boolean {
  return peer.trustDomain === operatorTrustDomain && (peer.path === HUB_PATH || peer.path.startsWith(HUB_PATH + "/"));
}

function notBeforeOf(peer: PeerIdentity): Date {
  return new Date(new X509Certificate(peer.leafDer).validFrom);
}

/** The RelayService implementation: client streams, hub sessions, and the stream listing. */
export function createRelayService(rpc: RpcEdge, deps: RelayServiceDeps): RelayServiceServer {
  const now = deps.now ?? Date.now;
  const sweeper = new DeadPeerSweeper({ deadPeerTimeoutMs: deps.deadPeerTimeoutMs, now });

  function admit(peer: PeerIdentity | undefined): PeerIdentity & { notBefore: Date } {
    if (peer === undefined) throw new EwiiError("ERR_PEER_REQUIRED", "a client certificate is required", { status: status.UNAUTHENTICATED });
    const staleness = deps.isRevocationStateStale();
    if (staleness.stale) throw staleRevocations(staleness.reason);
    const subject = { ...peer, notBefore: notBeforeOf(peer) };
    const sequence = deps.denySet.match(subject);
    if (sequence !== undefined) throw revoked(peer.spiffeId, sequence);
    return subject;
  }

  async function connect(call: ServerDuplexStream<ConnectRequest, ConnectResponse>, ctx: RpcContext): Promise<void> {
    const peer = admit(ctx.peer);
    const tenant = tenantOfTrustDomain(peer.trustDomain, deps.operatorTrustDomain);
    if (tenant === undefined) throw notAClient(peer.spiffeId);

    await new Promise<void>((resolve, reject) => {
      let ended = false;
      const finish = (error?: EwiiError): void => {
        if (ended) return;
        ended = true;
        sweeper.unwatch(liveness);
        if (error === undefined) resolve();
        else reject(error);
      };

      const stream: ClientStream = {
        spiffeId: peer.spiffeId,
        tenant,
        trustDomain: peer.trustDomain,
        serial: peer.serial,
        notBefore: peer.notBefore,
        notAfter: peer.notAfter,
        connectedAt: new Date(now()),
        send: (message) => {
          if (!ended && !call.writableEnded) call.write(message);
        },
        close: (code, reason) => finish(new EwiiError(code, reason, { status: code === "ERR_REVOKED" ? status.PERMISSION_DENIED : status.UNAVAILABLE })),
      };

      const liveness: WatchedPeer = {
        lastSeenMs: now(),
        onDead: (silentMs) => {
          ctx.logger.warn("client stream silent past the dead-peer timeout", { [LogField.clientSpiffeId]: peer.spiffeId, silent_ms: silentMs });
          deps.core.unregisterClient(stream, "dead peer");
          finish(new EwiiError("ERR_PEER_DEAD", `no message from the client for ${silentMs} ms`, { status: status.UNAVAILABLE }));
        },
      };
      sweeper.watch(liveness);

      call.on("data", (request: ConnectRequest) => {
        liveness.lastSeenMs = now();
        if (request.heartbeat !== undefined) stream.send({ heartbeat: { sentUnixMs: BigInt(now()) } });
        else if (request.frame !== undefined) deps.core.fromClient(stream, request.frame);
      });
      call.on("end", () => {
        deps.core.unregisterClient(stream, "client closed the stream");
        finish();
      });
      call.on("cancelled", () => {
        deps.core.unregisterClient(stream, "client cancelled the stream");
        finish();
      });
      call.on("error", () => {
        deps.core.unregisterClient(stream, "stream error");
        finish();
      });

      deps.core
        .registerClient(stream)
        .then(() => stream.send({ accepted: { relayId: deps.core.relayId, spiffeId: peer.spiffeId, heartbeatIntervalMs: deps.heartbeatIntervalMs } }))
        .catch((err: unknown) => {
          deps.core.unregisterClient(stream, "route registration failed");
          finish(new EwiiError("ERR_ROUTE_REGISTRATION_FAILED", "the relay could not record the route for this client; retry shortly", { status: status.UNAVAILABLE, cause: err }));
        });
    });
  }

  async function openSession(call: ServerDuplexStream<OpenSessionRequest, OpenSessionResponse>, ctx: RpcContext): Promise<void> {
    const peer = admit(ctx.peer);
    if (!isHubIdentity(peer, deps.operatorTrustDomain)) throw notAHub(peer.spiffeId);

    await new Promise<void>((resolve, reject) => {
      let sessionKey: string | undefined;
      let ended = false;
      const finish = (error?: EwiiError): void => {
        if (ended) return;
        ended = true;
        if (sessionKey !== undefined) deps.core.closeSession(sessionKey, "hub closed the session");
        if (error === undefined) resolve();
        else reject(error);
      };
      const hub: HubStream = {
        spiffeId: peer.spiffeId,
        serial: peer.serial,
        trustDomain: peer.trustDomain,
        notBefore: peer.notBefore,
        send: (message) => {
          if (!ended && !call.writableEnded) call.write(message);
        },
        close: (code, reason) => finish(new EwiiError(code, reason, { status: status.PERMISSION_DENIED })),
      };

      call.on("data", (request: OpenSessionRequest) => {
        try {
          if (sessionKey === undefined) {
            if (request.open === undefined) throw new EwiiError("ERR_SESSION_NOT_OPEN", "the first message of OpenSession must be `open`", { status: status.INVALID_ARGUMENT });
            if (request.open.sessionId.length !== 16) throw new EwiiError("ERR_SESSION_ID_INVALID", `session id must be 16 bytes, got ${request.open.sessionId.length}`, { status: status.INVALID_ARGUMENT });
            sessionKey = deps.core.openSession(hub, request.open.clientSpiffeId, request.open.sessionId);
            return;
          }
          const frame = request.frame;
          if (frame === undefined) return;
          // A hub may only write into the session this stream opened.
          if (Buffer.from(frame.sessionId).toString("hex") !== sessionKey) return;
          if (frame.closeReason !== undefined) {
            deps.core.closeSession(sessionKey, frame.closeReason);
            sessionKey = undefined;
            finish();
            return;
          }
          deps.core.fromHub(sessionKey, frame);
        } catch (err) {
          finish(err instanceof EwiiError ? err : new EwiiError("ERR_INTERNAL", "session routing failed", { status: status.INTERNAL, cause: err }));
        }
      });
      call.on("end", () => finish());
      call.on("cancelled", () => finish());
      call.on("error", () => finish());
    });
  }

  async function listStreams(_request: ListStreamsRequest, ctx: RpcContext): Promise<ListStreamsResponse> {
    const peer = ctx.peer;
    if (peer === undefined || peer.trustDomain !== deps.operatorTrustDomain) {
      throw new EwiiError("ERR_PERMISSION_DENIED", `caller ${peer?.spiffeId ?? "(anonymous)"} may not list relay streams: operator identities only`, { status: status.PERMISSION_DENIED });
    }
    return {
      streams: deps.core.listClients().map((client) => ({
        spiffeId: client.spiffeId,
        tenant: client.tenant,
        serial: client.serial,
        connectedAt: client.connectedAt,
        relayId: deps.core.relayId,
      })),
    };
  }

  return {
    connect: rpc.bidiStream(connect),
    openSession: rpc.bidiStream(openSession),
    listStreams: rpc.unary(listStreams),
  };
}
