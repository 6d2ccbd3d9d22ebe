import type { ClientDuplexStream } from "@grpc/grpc-js";
import type { ConnectRequest, ConnectResponse, RoutedFrame } from "../../gen/ewii/relay/v1/relay.js";
import { RelayServiceClient } from "../../gen/ewii/relay/v1/relay.js";
import { asError, errorCodeOf } from "../core/errors.js";
import { channelOptions, createClientCredentials, dialTarget } from "../core/grpc/index.js";
import { LogField, type Logger } from "../core/log.js";

/**
 * One client's outbound link to one relay. The client always dials; it
 * never listens. Lifecycle:
 *
 *   idle -> connecting -> connected -> backoff -> connecting -> ...
 *   any state -> stopped
 *
 * `connecting` ends in `connected` once the relay accepts the stream, or in
 * `backoff` on any failure. `connected` ends in `backoff` when the stream
 * fails or the relay is silent past the dead-peer timeout.
 */
export type LinkState = "idle" | "connecting" | "connected" | "backoff" | "stopped";

const LEGAL_TRANSITIONS: Record<LinkState, readonly LinkState[]> = {
  idle: ["connecting", "stopped"],
  connecting: ["connected", "backoff", "stopped"],
  connected: ["backoff", "stopped"],
  backoff: ["connecting", "stopped"],
  stopped: [],
};

export interface LinkIdentity {
  certChainPem: string;
  privateKeyPem: string;
  operatorBundlePem: string;
}

export interface RelayLinkOptions {
  address: string;
  operatorTrustDomain: string;
  /** Current SVID; read on every (re)connection so a renewed SVID is used. */
  identity: () => LinkIdentity;
  logger: Logger;
  heartbeatIntervalMs: number;
  deadPeerTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  onFrame: (frame: RoutedFrame, link: RelayLink) => void;
  onStateChange?: (link: RelayLink, from: LinkState, to: LinkState, reason: string) => void;
  random?: () => number;
  now?: () => number;
}

const RELAY_PATH = "/service/relay";

/** Error code a relay ends a stream with when a newer stream of the same SPIFFE ID takes its place. */
const STREAM_REPLACED_CODE = "ERR_STREAM_REPLACED";

/**
 * Consecutive replacements after which the link waits between half and all
 * of `backoffMaxMs`, so two clients with one identity stop taking the
 * stream from each other several times a second.
 */
export const REPLACEMENTS_BEFORE_LONG_BACKOFF = 3;

export class RelayLink {
  private currentState: LinkState = "idle";
  private call: ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined;
  private client: RelayServiceClient | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private consecutiveReplacements = 0;
  private lastHeardMs = 0;
  private relayIdValue = "";
  private acceptedSpiffeId = "";
  private connectedAtMs = 0;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(private readonly options: RelayLinkOptions) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
  }

  get state(): LinkState {
    return this.currentState;
  }

  get address(): string {
    return this.options.address;
  }

  /** Relay instance id announced by the relay, once connected. */
  get relayId(): string {
    return this.relayIdValue;
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.transition("stopped", "client stopping");
    this.teardown();
  }

  /** Drops the stream and reconnects at once, for example with a renewed SVID. */
  reconnect(reason: string): void {
    if (this.currentState === "stopped") return;
    this.teardown();
    if (this.currentState === "connected" || this.currentState === "connecting") this.transition("backoff", reason);
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.connect();
  }

  /** Sends a frame to the relay; returns false when not connected. */
  send(frame: RoutedFrame): boolean {
    if (this.currentState !== "connected" || this.call === undefined) return false;
    this.call.write({ frame });
    return true;
  }

  /**
   * Delay before reconnect attempt `attempt` (0-based): exponential backoff
   * with full jitter, a random value in [0, min(max, initial * 2^attempt)).
   */
  static backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number): number {
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
    return Math.floor(random() * ceiling);
  }

  /**
   * Delay after `consecutiveReplacements` replaced streams in a row: the
   * usual backoff below `REPLACEMENTS_BEFORE_LONG_BACKOFF`, then a random
   * value in [maxMs / 2, maxMs).
   */
  static replacedDelayMs(consecutiveReplacements: number, attempt: number, initialMs: number, maxMs: number, random: () => number): number {
    if (consecutiveReplacements < REPLACEMENTS_BEFORE_LONG_BACKOFF) return RelayLink.backoffDelayMs(attempt, initialMs, maxMs, random);
    return Math.floor(maxMs / 2 + (random() * maxMs) / 2);
  }

  private connect(): void {
    this.transition("connecting", this.attempt === 0 ? "start" : `retry ${this.attempt}`);
    const identity = this.options.identity();
    const expectedPrefix = `spiffe://${this.options.operatorTrustDomain}${RELAY_PATH}`;
    const credentials = createClientCredentials({
      tls: { certChainPem: identity.certChainPem, privateKeyPem: identity.privateKeyPem },
      trustedCasPem: identity.operatorBundlePem,
      expectServer: (spiffeId) => spiffeId === expectedPrefix || spiffeId.startsWith(expectedPrefix + "/"),
    });
    this.client = new RelayServiceClient(dialTarget(this.options.address), credentials, {
      ...channelOptions(this.options.address),
      "grpc.keepalive_time_ms": Math.max(1000, Math.floor(this.options.deadPeerTimeoutMs / 3)),
      "grpc.keepalive_timeout_ms": Math.max(1000, Math.floor(this.options.deadPeerTimeoutMs / 3)),
    });
    const call = this.client.connect();
    this.call = call;
    this.lastHeardMs = this.now();

    call.on("data", (response: ConnectResponse) => {
      if (call !== this.call) return;
      this.lastHeardMs = this.now();
      if (response.accepted !== undefined) {
        this.relayIdValue = response.accepted.relayId;
        this.acceptedSpiffeId = response.accepted.spiffeId;
        this.connectedAtMs = this.now();
        this.attempt = 0;
        this.transition("connected", `relay ${response.accepted.relayId} accepted ${response.accepted.spiffeId}`);
      } else if (response.frame !== undefined) {
        this.options.onFrame(response.frame, this);
      }
    });
    call.on("error", (err: unknown) => {
      if (call !== this.call) return;
      const code = errorCodeOf(err);
      const reason = code === undefined ? asError(err).message : `${code}: ${asError(err).message}`;
      if (code === STREAM_REPLACED_CODE) this.onReplaced(reason);
      else this.fail(reason);
    });
    call.on("end", () => {
      if (call === this.call) this.fail("relay ended the stream");
    });

    // Send the first heartbeat at once rather than after one interval.
    call.write({ heartbeat: { sentUnixMs: BigInt(this.now()) } });
    this.heartbeatTimer = setInterval(() => {
      if (call !== this.call) return;
      const silentMs = this.now() - this.lastHeardMs;
      if (silentMs > this.options.deadPeerTimeoutMs) {
        this.fail(`relay silent for ${silentMs} ms (timeout ${this.options.deadPeerTimeoutMs} ms)`);
        return;
      }
      call.write({ heartbeat: { sentUnixMs: BigInt(this.now()) } });
    }, this.options.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  /**
   * Handles a stream the relay replaced with a newer one of the same
   * identity. The newer stream belongs to another running client, because
   * a link ignores the streams it drops itself (on renewal, for example).
   * The two clients take the stream from each other until one stops.
   */
  private onReplaced(reason: string): void {
    // A stream that lived through two maximum backoffs was not fighting a
    // duplicate client, so its replacement starts a new series.
    const connectedMs = this.now() - this.connectedAtMs;
    if (connectedMs > 2 * this.options.backoffMaxMs) this.consecutiveReplacements = 0;
    this.consecutiveReplacements++;
    const spiffeId = this.acceptedSpiffeId === "" ? "of this client" : this.acceptedSpiffeId;
    this.options.logger.warn(`relay replaced this stream: another client is running with the same identity ${spiffeId}; stop one of them`, {
      relay_address: this.options.address,
      [LogField.relayId]: this.relayIdValue,
      consecutive_replacements: this.consecutiveReplacements,
    });
    this.fail(reason, { replaced: true });
  }

  private fail(reason: string, options: { replaced: boolean } = { replaced: false }): void {
    if (this.currentState === "stopped" || this.currentState === "backoff") return;
    if (!options.replaced) this.consecutiveReplacements = 0;
    this.teardown();
    this.transition("backoff", reason);
    const { backoffInitialMs, backoffMaxMs } = this.options;
    const delayMs = RelayLink.replacedDelayMs(this.consecutiveReplacements, this.attempt, backoffInitialMs, backoffMaxMs, this.random);
    this.attempt++;
    this.options.logger.info("reconnecting to relay after backoff", {
      relay_address: this.options.address,
      delay_ms: delayMs,
      attempt: this.attempt,
      consecutive_replacements: this.consecutiveReplacements,
    });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.currentState === "backoff") this.connect();
    }, delayMs);
    this.reconnectTimer.unref();
  }

  private teardown(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    if (this.reconnectTimer !== undefined && this.currentState === "stopped") clearTimeout(this.reconnectTimer);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    this.client?.close();
    this.client = undefined;
  }

  private transition(to: LinkState, reason: string): void {
    const from = this.currentState;
    if (!LEGAL_TRANSITIONS[from].includes(to)) {
      this.options.logger.error("illegal relay link transition ignored", { from, to, reason, relay_address: this.options.address });
      return;
    }
    this.currentState = to;
    this.options.logger.info("relay link state changed", { from, to, reason, relay_address: this.options.address, [LogField.relayId]: this.relayIdValue });
    this.options.onStateChange?.(this, from, to, reason);
  }
}
