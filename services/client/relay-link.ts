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

export class RelayLink {
  private currentState: LinkState = "idle";
  private call: ClientDuplexStream<ConnectRequest, ConnectResponse> | undefined;
  private client: RelayServiceClient | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private lastHeardMs = 0;
  private relayIdValue = "";
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
        this.attempt = 0;
        this.transition("connected", `relay ${response.accepted.relayId} accepted ${response.accepted.spiffeId}`);
      } else if (response.frame !== undefined) {
        this.options.onFrame(response.frame, this);
      }
    });
    call.on("error", (err: unknown) => {
      if (call !== this.call) return;
      const code = errorCodeOf(err);
      this.fail(code === undefined ? asError(err).message : `${code}: ${asError(err).message}`);
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

  private fail(reason: string): void {
    if (this.currentState === "stopped" || this.currentState === "backoff") return;
    this.teardown();
    this.transition("backoff", reason);
    const delayMs = RelayLink.backoffDelayMs(this.attempt, this.options.backoffInitialMs, this.options.backoffMaxMs, this.random);
    this.attempt++;
    this.options.logger.info("reconnecting to relay after backoff", { relay_address: this.options.address, delay_ms: delayMs, attempt: this.attempt });
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
