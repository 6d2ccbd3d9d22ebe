import type { ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { PolicyServiceClient, WatchResponse } from "../../gen/ewii/policy/v1/policy.js";
import { errorCodeOf } from "../core/errors.js";
import { LogField, type Logger } from "../core/log.js";
import { compilePolicy, type CompiledPolicy } from "./compile.js";
import { parsePolicyJson } from "./document.js";

export interface PolicySnapshotCacheOptions {
  /** Milliseconds since the epoch; injectable for tests. */
  nowMs?: () => number;
  /** Returns a number in [0, 1); injectable for tests. */
  random?: () => number;
  /** First reconnect delay ceiling, in milliseconds. Default 250. */
  initialBackoffMs?: number;
  /** Largest reconnect delay ceiling, in milliseconds. Default 10,000. */
  maxBackoffMs?: number;
}

const DEFAULT_INITIAL_BACKOFF_MS = 250;
const DEFAULT_MAX_BACKOFF_MS = 10_000;

export type PolicyWatchState = "idle" | "connecting" | "live" | "backoff" | "stopped";

/**
 * Hub-side copy of the current policy, kept up to date by PolicyService.Watch.
 *
 * States: idle → connecting → live (a snapshot arrived on this stream) →
 * backoff (the stream ended) → connecting ... and stopped after `stop()`.
 * Each (re)connection requests the full current snapshot (known_version 0)
 * so that its arrival proves the stream works, even when the version has not
 * changed.
 *
 * `ageMs()` is 0 while the stream is live, because the service pushes every
 * new version at once; after the stream ends it counts from that moment. A
 * half-open connection counts as live until HTTP/2 keepalive detects it
 * (about 15 s with the client defaults).
 */
export class PolicySnapshotCache {
  private policy: CompiledPolicy | undefined;
  private state: PolicyWatchState = "idle";
  /** Time the snapshot was last known to be current, in milliseconds since the epoch. */
  private confirmedAtMs: number | undefined;
  private stream: ClientReadableStream<WatchResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private readonly listeners = new Set<(policy: CompiledPolicy) => void>();
  private readonly nowMs: () => number;
  private readonly random: () => number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(
    private readonly client: PolicyServiceClient,
    private readonly logger: Logger,
    options: PolicySnapshotCacheOptions = {},
  ) {
    this.nowMs = options.nowMs ?? Date.now;
    this.random = options.random ?? Math.random;
    this.initialBackoffMs = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    this.maxBackoffMs = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  }

  /** Opens the Watch stream; reconnects by itself until `stop()`. */
  start(): void {
    if (this.state !== "idle") throw new TypeError(`PolicySnapshotCache.start() called in state ${this.state}; call it once`);
    this.connect();
  }

  /** Returns the latest compiled policy, or undefined before the first snapshot arrives. */
  current(): CompiledPolicy | undefined {
    return this.policy;
  }

  /** Milliseconds since the snapshot was last known current; Infinity before the first snapshot. */
  ageMs(): number {
    if (this.confirmedAtMs === undefined) return Number.POSITIVE_INFINITY;
    if (this.state === "live") return 0;
    return Math.max(0, this.nowMs() - this.confirmedAtMs);
  }

  /** State of the Watch stream, for health reports. */
  get watchState(): PolicyWatchState {
    return this.state;
  }

  /** Calls `listener` with each newly compiled version; returns the function that unsubscribes. */
  onUpdate(listener: (policy: CompiledPolicy) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Cancels the stream and any pending reconnect. The cached policy stays readable. */
  stop(): void {
    if (this.state === "live") this.confirmedAtMs = this.nowMs();
    this.state = "stopped";
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
  }

  private connect(): void {
    this.transition("connecting");
    let stream: ClientReadableStream<WatchResponse>;
    try {
      stream = this.client.watch({ knownVersion: 0n });
    } catch (err: unknown) {
      // grpc-js throws here when the channel was closed; retrying on a closed channel cannot succeed.
      this.logger.error("policy watch cannot start; the gRPC client is closed. Stopping", { [LogField.cause]: err instanceof Error ? err.message : String(err) });
      this.stop();
      return;
    }
    this.stream = stream;
    let ended = false;
    const onEnd = (reason: string, err?: ServiceError): void => {
      if (ended || this.stream !== stream) return;
      ended = true;
      this.stream = undefined;
      this.scheduleReconnect(reason, err);
    };
    stream.on("data", (response: WatchResponse) => {
      if (this.stream === stream) this.receive(response);
    });
    stream.on("error", (err: ServiceError) => onEnd("stream failed", err));
    stream.on("end", () => onEnd("stream ended by the server"));
  }

  private receive(response: WatchResponse): void {
    const snapshot = response.snapshot;
    if (snapshot === undefined) {
      this.logger.warn("policy watch message without a snapshot ignored");
      return;
    }
    const version = Number(snapshot.version);
    try {
      if (this.policy === undefined || this.policy.version !== version || this.policy.documentJson !== snapshot.documentJson) {
        if (this.policy !== undefined && version < this.policy.version) {
          this.logger.warn("policy service sent an older version than the cached one; using it", { version, cached_version: this.policy.version });
        }
        const compiled = compilePolicy(parsePolicyJson(snapshot.documentJson, `policy version ${version}`), version);
        this.policy = compiled;
        this.logger.info("policy snapshot updated", { version, document_sha256: compiled.documentSha256, applied_by: snapshot.appliedBy });
        for (const listener of [...this.listeners]) listener(compiled);
      }
    } catch (err: unknown) {
      // Keep the previous policy: a snapshot this build cannot read must not clear it.
      this.logger.error("policy snapshot rejected; keeping the previous version", {
        version,
        [LogField.errorCode]: errorCodeOf(err),
        [LogField.cause]: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    this.attempt = 0;
    this.confirmedAtMs = this.nowMs();
    if (this.state !== "live") this.transition("live");
  }

  private scheduleReconnect(reason: string, err?: ServiceError): void {
    if (this.state === "stopped") return;
    if (this.state === "live") this.confirmedAtMs = this.nowMs();
    // Exponential backoff with full jitter: a random delay up to a ceiling that doubles per failed attempt.
    const ceilingMs = Math.min(this.maxBackoffMs, this.initialBackoffMs * 2 ** this.attempt);
    const delayMs = Math.floor(this.random() * ceilingMs);
    this.attempt = Math.min(this.attempt + 1, 30);
    const level = err !== undefined && err.code !== status.CANCELLED ? "warn" : "info";
    this.logger.log(level, "policy watch disconnected; reconnecting", {
      reason,
      delay_ms: delayMs,
      grpc_status: err === undefined ? undefined : status[err.code],
      [LogField.errorCode]: err === undefined ? undefined : errorCodeOf(err),
      [LogField.cause]: err?.details,
    });
    this.transition("backoff");
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state !== "stopped") this.connect();
    }, delayMs);
  }

  private transition(next: PolicyWatchState): void {
    if (this.state === next) return;
    this.logger.debug("policy watch state changed", { from: this.state, to: next });
    this.state = next;
  }
}
