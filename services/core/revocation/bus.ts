import type { Revocation } from "../../../gen/ewii/ca/v1/ca.js";

/** Connection events of a bus subscription. */
export interface RevocationBusEvents {
  /**
   * The subscription is (again) in place. Revocations published while it
   * was not may be lost, so the subscriber catches up with ListRevocations.
   */
  onReconnect(): void;
  /** The subscription is down; pushed revocations stop until onReconnect. */
  onDisconnect(reason: string): void;
}

/** Receives each pushed revocation; it must not throw. */
export type RevocationHandler = (revocation: Revocation) => void;

/**
 * The channel the CA pushes committed revocations on, and relays and hubs
 * listen to. Delivery is at most once and in publish order: a subscriber
 * detects losses by sequence gaps and catches up from the CA.
 */
export interface RevocationBus {
  /** Sends one revocation to every current subscriber. Rejects when it could not be sent. */
  publish(revocation: Revocation): Promise<void>;
  /**
   * Starts listening. Resolves without waiting for the connection, which
   * `events.onReconnect` reports; the result stops the subscription.
   */
  subscribe(handler: RevocationHandler, events: RevocationBusEvents): Promise<() => Promise<void>>;
  /** Releases the bus's connections. */
  close(): Promise<void>;
}

interface InProcessSubscriber {
  handler: RevocationHandler;
  events: RevocationBusEvents;
}

/**
 * A bus inside one process, for `ewii dev` without Redis. Delivery is
 * asynchronous (a microtask later) and in publish order, like Redis
 * pub/sub; `disconnect` and `reconnect` let tests simulate an outage.
 */
export class InProcessRevocationBus implements RevocationBus {
  private readonly subscribers = new Set<InProcessSubscriber>();
  private connected = true;

  async publish(revocation: Revocation): Promise<void> {
    if (!this.connected) throw new Error("in-process revocation bus is disconnected");
    for (const subscriber of this.subscribers) queueMicrotask(() => subscriber.handler(revocation));
  }

  async subscribe(handler: RevocationHandler, events: RevocationBusEvents): Promise<() => Promise<void>> {
    const subscriber = { handler, events };
    this.subscribers.add(subscriber);
    if (this.connected) queueMicrotask(() => events.onReconnect());
    return async () => {
      this.subscribers.delete(subscriber);
    };
  }

  /** Drops every message until `reconnect`, as a Redis outage would. */
  disconnect(reason = "in-process bus disconnected"): void {
    if (!this.connected) return;
    this.connected = false;
    for (const subscriber of this.subscribers) subscriber.events.onDisconnect(reason);
  }

  reconnect(): void {
    if (this.connected) return;
    this.connected = true;
    for (const subscriber of this.subscribers) subscriber.events.onReconnect();
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  async close(): Promise<void> {
    this.subscribers.clear();
  }
}
