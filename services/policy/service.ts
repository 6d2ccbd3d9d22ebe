import { status } from "@grpc/grpc-js";
import {
  Effect,
  type ApplyRequest,
  type ApplyResponse,
  type EvaluateRequest,
  type EvaluateResponse,
  type GetPolicyRequest,
  type GetPolicyResponse,
  type PolicyServiceServer,
  type PolicySnapshot,
  type WatchRequest,
  type WatchResponse,
} from "../../gen/ewii/policy/v1/policy.js";
import { EwiiError } from "../core/errors.js";
import type { PeerIdentity, RpcContext, RpcEdge, ServerStreamContext } from "../core/grpc/index.js";
import { LogField, type Logger } from "../core/log.js";
import type { CompiledPolicy } from "./compile.js";
import { parsePolicy } from "./document.js";
import { PolicyErrorCode, policyInvalid } from "./errors.js";
import { evaluate, type Decision, type EvaluationRequest } from "./evaluate.js";
import { RateLimiter } from "./rate-limit.js";
import { DEFAULT_DENY_RULE } from "./references.js";
import type { PolicyStore, PolicyVersionRecord } from "./store.js";

/** SPIFFE ID path prefix of the operator's administrators, who may apply policies. */
export const ADMIN_PATH_PREFIX = "/admin/";

/** Name of the source used in errors when an Apply request gives none. */
const DEFAULT_SOURCE_NAME = "policy.yaml";

/** The current policy version, compiled, with its stored record. */
export interface PolicyState {
  record: PolicyVersionRecord;
  policy: CompiledPolicy;
}

export interface PolicyServiceDeps {
  store: PolicyStore;
  /** Trust domain of the operator, for example "operator.example"; documents must name the same one. */
  operatorTrustDomain: string;
  logger: Logger;
  now?: () => Date;
  rateLimiter?: RateLimiter;
}

/**
 * The policy service: applies documents to the store, evaluates requests on
 * the current version, and pushes every new version to its watchers as soon
 * as it is stored.
 *
 * NOTE: pushes reach the watchers of this process only. Several replicas
 * sharing one store do not see each other's applies until they restart.
 */
export class PolicyService {
  private state: PolicyState | undefined;
  private readonly listeners = new Set<(state: PolicyState) => void>();
  private readonly store: PolicyStore;
  private readonly operatorTrustDomain: string;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly rateLimiter: RateLimiter;

  constructor(deps: PolicyServiceDeps) {
    this.store = deps.store;
    this.operatorTrustDomain = deps.operatorTrustDomain;
    this.logger = deps.logger;
    this.now = deps.now ?? (() => new Date());
    this.rateLimiter = deps.rateLimiter ?? new RateLimiter();
    const record = this.store.current();
    const policy = this.store.currentPolicy();
    if (record !== undefined && policy !== undefined) this.state = { record, policy };
  }

  /** Returns the current version, or undefined before the first apply. */
  current(): PolicyState | undefined {
    return this.state;
  }

  /**
   * Validates and stores a document as the next version, then notifies every
   * watcher. Throws ERR_POLICY_INVALID, leaving the current version in
   * place, when the document is invalid or names another trust domain.
   */
  apply(yamlText: string, sourceName: string, appliedBy: string): PolicyState {
    const document = parsePolicy(yamlText, sourceName);
    if (document.operator_trust_domain !== this.operatorTrustDomain) {
      throw policyInvalid(
        `${sourceName}: operator_trust_domain: ${JSON.stringify(document.operator_trust_domain)} is not this service's trust domain ${JSON.stringify(this.operatorTrustDomain)}; set operator_trust_domain: ${this.operatorTrustDomain}`,
      );
    }
    const { record, policy } = this.store.applyDocument(document, sourceName, appliedBy);
    const state = { record, policy };
    this.state = state;
    this.logger.info("policy applied", { version: record.version, [LogField.callerSpiffeId]: appliedBy, document_sha256: record.documentSha256, source: sourceName });
    for (const listener of [...this.listeners]) {
      try {
        listener(state);
      } catch (err: unknown) {
        this.logger.error("policy watcher failed on a new version", { version: record.version, [LogField.cause]: err instanceof Error ? err.message : String(err) });
      }
    }
    return state;
  }

  /** Decides a request on the current version; before the first apply every request is denied. */
  evaluate(request: EvaluationRequest): Decision {
    const state = this.state;
    if (state === undefined) {
      return { effect: "deny", rule: DEFAULT_DENY_RULE, policyVersion: 0, reason: "no policy has been applied yet", maxRows: 0 };
    }
    return evaluate(state.policy, request, this.now(), this.rateLimiter);
  }

  /** Calls `listener` with each new version; returns the function that unsubscribes. */
  subscribe(listener: (state: PolicyState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Number of open Watch streams and other subscribers. */
  get subscriberCount(): number {
    return this.listeners.size;
  }

  /** Builds the gRPC handlers on the server's RPC edge. */
  implementation(rpc: RpcEdge): PolicyServiceServer {
    return {
      apply: rpc.unary<ApplyRequest, ApplyResponse>(async (req, ctx) => this.handleApply(req, ctx)),
      getPolicy: rpc.unary<GetPolicyRequest, GetPolicyResponse>(async (_req, ctx) => this.handleGetPolicy(ctx)),
      evaluate: rpc.unary<EvaluateRequest, EvaluateResponse>(async (req, ctx) => this.handleEvaluate(req, ctx)),
      watch: rpc.serverStream<WatchRequest, WatchResponse>(async (req, ctx) => this.handleWatch(req, ctx)),
    };
  }

  private handleApply(req: ApplyRequest, ctx: RpcContext): ApplyResponse {
    const admin = this.requireOperator(ctx.peer, "Apply");
    if (!admin.path.startsWith(ADMIN_PATH_PREFIX)) {
      throw new EwiiError(PolicyErrorCode.permissionDenied, `Apply requires an admin SVID (a SPIFFE ID under spiffe://${this.operatorTrustDomain}${ADMIN_PATH_PREFIX}); ${admin.spiffeId} is not one`, {
        status: status.PERMISSION_DENIED,
      });
    }
    const state = this.apply(req.documentYaml, req.sourceName === "" ? DEFAULT_SOURCE_NAME : req.sourceName, admin.spiffeId);
    return { version: BigInt(state.record.version), documentSha256: state.record.documentSha256 };
  }

  private handleGetPolicy(ctx: RpcContext): GetPolicyResponse {
    this.requireOperator(ctx.peer, "GetPolicy");
    const state = this.state;
    if (state === undefined) throw noPolicyError();
    return { snapshot: toSnapshot(state.record) };
  }

  private handleEvaluate(req: EvaluateRequest, ctx: RpcContext): EvaluateResponse {
    this.requireOperator(ctx.peer, "Evaluate");
    const decision = this.evaluate({ principal: req.principal, tenant: req.tenant, dataset: req.dataset, queryId: req.queryId, params: req.params });
    return {
      effect: decision.effect === "allow" ? Effect.EFFECT_ALLOW : Effect.EFFECT_DENY,
      rule: decision.rule,
      policyVersion: BigInt(decision.policyVersion),
      reason: decision.reason,
      maxRows: decision.maxRows,
      requestError: decision.requestError ?? "",
    };
  }

  /** Sends the current version when it is newer than the caller's, then each new version until the call ends. */
  private async handleWatch(req: WatchRequest, ctx: ServerStreamContext<WatchResponse>): Promise<void> {
    this.requireOperator(ctx.peer, "Watch");
    let lastSent = req.knownVersion;
    let wake: (() => void) | undefined;
    const unsubscribe = this.subscribe(() => wake?.());
    const onAbort = (): void => wake?.();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    ctx.logger.info("policy watcher connected", { known_version: Number(req.knownVersion) });
    try {
      while (!ctx.signal.aborted) {
        const state = this.state;
        if (state !== undefined && BigInt(state.record.version) > lastSent) {
          // A slow watcher skips versions it had no time to receive: only the latest one matters.
          await ctx.write({ snapshot: toSnapshot(state.record) });
          lastSent = BigInt(state.record.version);
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      unsubscribe();
      ctx.signal.removeEventListener("abort", onAbort);
      ctx.logger.info("policy watcher disconnected", { last_version: Number(lastSent) });
    }
  }

  private requireOperator(peer: PeerIdentity | undefined, method: string): PeerIdentity {
    if (peer === undefined || peer.trustDomain !== this.operatorTrustDomain) {
      throw new EwiiError(PolicyErrorCode.permissionDenied, `${method} is open to workloads of the operator trust domain ${JSON.stringify(this.operatorTrustDomain)} only; call it with an operator SVID`, {
        status: status.PERMISSION_DENIED,
      });
    }
    return peer;
  }
}

/** Converts a stored record to the wire snapshot. */
export function toSnapshot(record: PolicyVersionRecord): PolicySnapshot {
  return { version: BigInt(record.version), documentJson: record.documentJson, appliedAt: record.appliedAt, appliedBy: record.appliedBy };
}

function noPolicyError(): EwiiError {
  return new EwiiError(PolicyErrorCode.notFound, "no policy has been applied yet; run `ewii policy apply -f FILE` with an admin SVID", { status: status.NOT_FOUND });
}
