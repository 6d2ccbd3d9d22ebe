import { status } from "@grpc/grpc-js";
import type { ExecuteQueryRequest, ExecuteQueryResponse, HubServiceServer, ListClientsRequest, ListClientsResponse, ConnectedClient } from "../../gen/ewii/hub/v1/hub.js";
import { EwiiError } from "../core/errors.js";
import type { PeerIdentity, RpcContext, RpcEdge, ServerStreamContext } from "../core/grpc/index.js";
import type { RouteEntry } from "../core/routes/index.js";
import { executeQuery, type ExecuteDeps } from "./execute.js";

export interface HubServiceDeps extends ExecuteDeps {
  /** Every live route, from the registry and from the static relays. */
  listRoutes: () => Promise<RouteEntry[]>;
}

interface ActiveQuery {
  caller: PeerIdentity;
  controller: AbortController;
}

/** The HubService implementation, plus a hook that aborts queries of revoked callers. */
export class HubQueries {
  private readonly active = new Set<ActiveQuery>();

  constructor(private readonly deps: HubServiceDeps) {}

  /** Aborts in-flight queries whose caller the deny set now covers; returns how many. */
  abortRevokedCallers(): number {
    let aborted = 0;
    for (const query of this.active) {
      if (this.deps.callerRevocation(query.caller) === undefined) continue;
      query.controller.abort(new EwiiError("ERR_REVOKED", `caller ${query.caller.spiffeId} was revoked during the query; enroll the workload again to get a new SVID`, { status: status.PERMISSION_DENIED }));
      aborted++;
    }
    return aborted;
  }

  implementation(rpc: RpcEdge): HubServiceServer {
    return {
      executeQuery: rpc.serverStream((request: ExecuteQueryRequest, ctx: ServerStreamContext<ExecuteQueryResponse>) => this.execute(request, ctx)),
      listClients: rpc.unary((request: ListClientsRequest, ctx: RpcContext) => this.listClients(request, ctx)),
    };
  }

  private async execute(request: ExecuteQueryRequest, ctx: ServerStreamContext<ExecuteQueryResponse>): Promise<void> {
    if (ctx.peer === undefined) throw new EwiiError("ERR_PEER_REQUIRED", "ExecuteQuery requires an SVID", { status: status.UNAUTHENTICATED });
    const controller = new AbortController();
    const entry: ActiveQuery = { caller: ctx.peer, controller };
    this.active.add(entry);
    try {
      const signal = AbortSignal.any([ctx.signal, controller.signal]);
      await executeQuery(request, { ...ctx, signal }, this.deps);
    } catch (err) {
      if (controller.signal.aborted) throw controller.signal.reason;
      throw err;
    } finally {
      this.active.delete(entry);
    }
  }

  private async listClients(request: ListClientsRequest, ctx: RpcContext): Promise<ListClientsResponse> {
    if (ctx.peer === undefined || ctx.peer.trustDomain !== this.deps.operatorTrustDomain) {
      throw new EwiiError("ERR_PERMISSION_DENIED", `caller ${ctx.peer?.spiffeId ?? "(anonymous)"} may not list clients: operator identities only`, { status: status.PERMISSION_DENIED });
    }
    const byClient = new Map<string, ConnectedClient>();
    for (const route of await this.deps.listRoutes()) {
      if (request.tenant !== "" && route.tenant !== request.tenant) continue;
      const known = byClient.get(route.clientSpiffeId);
      if (known === undefined) {
        byClient.set(route.clientSpiffeId, { spiffeId: route.clientSpiffeId, tenant: route.tenant, relayIds: [route.relayId], connectedSince: route.connectedAt });
        continue;
      }
      if (!known.relayIds.includes(route.relayId)) known.relayIds.push(route.relayId);
      if (known.connectedSince === undefined || route.connectedAt < known.connectedSince) known.connectedSince = route.connectedAt;
    }
    const clients = [...byClient.values()].sort((a, b) => a.tenant.localeCompare(b.tenant) || a.spiffeId.localeCompare(b.spiffeId));
    for (const client of clients) client.relayIds.sort();
    return { clients };
  }
}
