import { lookupQuery, evaluate, RateLimiter, type CompiledPolicy } from "../policy/index.js";
import type { DecisionRequest, HubDecision, PolicyGate } from "./ports.js";

export interface SnapshotSource {
  current(): CompiledPolicy | undefined;
  ageMs(): number;
}

/**
 * Evaluates policy in the hub on the latest snapshot streamed from the
 * policy service: no network hop per query. Rate limits are counted per
 * hub process.
 */
export class LocalPolicyGate implements PolicyGate {
  private readonly rateLimiter = new RateLimiter();

  constructor(
    private readonly snapshots: SnapshotSource,
    private readonly now: () => Date = () => new Date(),
  ) {}

  decide(request: DecisionRequest): HubDecision {
    const policy = this.snapshots.current();
    if (policy === undefined) {
      return { effect: "deny", rule: "no-policy", policyVersion: 0, reason: "the hub has no policy snapshot yet", maxRows: 0, sqlSha256ByEngine: {} };
    }
    const decision = evaluate(policy, request, this.now(), this.rateLimiter);
    const query = lookupQuery(policy, request.dataset, request.queryId);
    const sqlSha256ByEngine: Record<string, string> = {};
    for (const [engine, hash] of Object.entries(query?.sqlSha256 ?? {})) {
      if (hash !== undefined) sqlSha256ByEngine[engine] = hash;
    }
    return { ...decision, sqlSha256ByEngine };
  }
}
