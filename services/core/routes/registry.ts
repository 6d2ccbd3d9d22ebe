import type { Redis } from "ioredis";

/** One live client stream held by one relay. */
export interface RouteEntry {
  clientSpiffeId: string;
  tenant: string;
  relayId: string;
  /** Serial of the client SVID that holds the stream, lowercase hexadecimal. */
  serial: string;
  connectedAt: Date;
  /** The route disappears at this time unless the relay renews it. */
  expiresAt: Date;
}

/**
 * Where hubs find the relays that hold a client's stream. A relay
 * registers each client stream with a lease and renews it while the stream
 * lives, so a relay that dies without cleaning up loses its routes when the
 * lease runs out.
 */
export interface RouteRegistry {
  /** Adds or renews a route. */
  register(entry: RouteEntry): Promise<void>;
  /** Adds or renews many routes in as few round trips as the store allows; rejects if any write failed. */
  registerMany(entries: readonly RouteEntry[]): Promise<void>;
  unregister(clientSpiffeId: string, relayId: string): Promise<void>;
  /** Returns the unexpired routes of one client. */
  lookup(clientSpiffeId: string): Promise<RouteEntry[]>;
  /** Returns every unexpired route. */
  list(): Promise<RouteEntry[]>;
  /** Records where a relay accepts hub sessions, for `leaseMs`. */
  announceRelay(relayId: string, address: string, leaseMs: number): Promise<void>;
  /** Returns the announced, unexpired relay addresses by relay id. */
  relays(): Promise<Map<string, string>>;
  close(): Promise<void>;
}

/** A registry inside one process, for `ewii dev` and single-relay setups. */
export class InMemoryRouteRegistry implements RouteRegistry {
  private readonly routes = new Map<string, Map<string, RouteEntry>>();
  private readonly relayAddresses = new Map<string, { address: string; expiresAtMs: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  async register(entry: RouteEntry): Promise<void> {
    let byRelay = this.routes.get(entry.clientSpiffeId);
    if (byRelay === undefined) {
      byRelay = new Map();
      this.routes.set(entry.clientSpiffeId, byRelay);
    }
    byRelay.set(entry.relayId, { ...entry });
  }

  async registerMany(entries: readonly RouteEntry[]): Promise<void> {
    for (const entry of entries) await this.register(entry);
  }

  async unregister(clientSpiffeId: string, relayId: string): Promise<void> {
    const byRelay = this.routes.get(clientSpiffeId);
    byRelay?.delete(relayId);
    if (byRelay?.size === 0) this.routes.delete(clientSpiffeId);
  }

  async lookup(clientSpiffeId: string): Promise<RouteEntry[]> {
    const now = this.now();
    return [...(this.routes.get(clientSpiffeId)?.values() ?? [])].filter((entry) => entry.expiresAt.getTime() > now);
  }

  async list(): Promise<RouteEntry[]> {
    const now = this.now();
    return [...this.routes.values()].flatMap((byRelay) => [...byRelay.values()]).filter((entry) => entry.expiresAt.getTime() > now);
  }

  async announceRelay(relayId: string, address: string, leaseMs: number): Promise<void> {
    this.relayAddresses.set(relayId, { address, expiresAtMs: this.now() + leaseMs });
  }

  async relays(): Promise<Map<string, string>> {
    const now = this.now();
    const live = new Map<string, string>();
    for (const [relayId, announced] of this.relayAddresses) {
      if (announced.expiresAtMs > now) live.set(relayId, announced.address);
    }
    return live;
  }

  async close(): Promise<void> {
    this.routes.clear();
  }
}

const ROUTE_KEY_PREFIX = "ewii:route:";
/** Routes written per pipeline by registerMany, so one renewal does not buffer every command at once. */
const REGISTER_PIPELINE_ROUTES = 500;
const RELAY_KEY_PREFIX = "ewii:relay:";

/**
 * Routes in Redis: one hash per client (`ewii:route:<SPIFFE ID>`), one field
 * per relay holding its stream, each value carrying its own expiry. The
 * hash itself expires with the longest lease, so a client whose relays all
 * died leaves no key behind.
 */
export class RedisRouteRegistry implements RouteRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly now: () => number = Date.now,
  ) {}

  async register(entry: RouteEntry): Promise<void> {
    await this.registerMany([entry]);
  }

  /** Writes up to REGISTER_PIPELINE_ROUTES routes per MULTI/EXEC transaction, one round trip each. */
  async registerMany(entries: readonly RouteEntry[]): Promise<void> {
    for (let start = 0; start < entries.length; start += REGISTER_PIPELINE_ROUTES) {
      const transaction = this.redis.multi();
      for (const entry of entries.slice(start, start + REGISTER_PIPELINE_ROUTES)) {
        const key = ROUTE_KEY_PREFIX + entry.clientSpiffeId;
        const value = JSON.stringify({
          tenant: entry.tenant,
          serial: entry.serial,
          connectedAt: entry.connectedAt.getTime(),
          expiresAt: entry.expiresAt.getTime(),
        });
        const ttlMs = Math.max(1, entry.expiresAt.getTime() - this.now());
        // PEXPIRE GT extends the key's lifetime but never shortens it, so one
        // relay's short lease does not drop another relay's route (Redis 7.0+).
        transaction.hset(key, entry.relayId, value).pexpire(key, ttlMs, "GT").pexpire(key, ttlMs, "NX");
      }
      // exec resolves null when the transaction was aborted (a WATCH failure, which this code never sets up).
      const results = (await transaction.exec()) ?? [];
      const failed = results.find(([err]) => err !== null);
      if (failed !== undefined) throw failed[0];
    }
  }

  async unregister(clientSpiffeId: string, relayId: string): Promise<void> {
    await this.redis.hdel(ROUTE_KEY_PREFIX + clientSpiffeId, relayId);
  }

  async lookup(clientSpiffeId: string): Promise<RouteEntry[]> {
    const fields = await this.redis.hgetall(ROUTE_KEY_PREFIX + clientSpiffeId);
    return this.liveEntries(clientSpiffeId, fields);
  }

  async list(): Promise<RouteEntry[]> {
    const entries: RouteEntry[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", ROUTE_KEY_PREFIX + "*", "COUNT", 500);
      cursor = next;
      for (const key of keys) {
        const fields = await this.redis.hgetall(key);
        entries.push(...this.liveEntries(key.slice(ROUTE_KEY_PREFIX.length), fields));
      }
    } while (cursor !== "0");
    return entries;
  }

  async announceRelay(relayId: string, address: string, leaseMs: number): Promise<void> {
    await this.redis.set(RELAY_KEY_PREFIX + relayId, address, "PX", leaseMs);
  }

  async relays(): Promise<Map<string, string>> {
    const live = new Map<string, string>();
    let cursor = "0";
    do {
      const [next, keys] = await this.redis.scan(cursor, "MATCH", RELAY_KEY_PREFIX + "*", "COUNT", 500);
      cursor = next;
      if (keys.length === 0) continue;
      const addresses = await this.redis.mget(...keys);
      keys.forEach((key, i) => {
        const address = addresses[i];
        if (address !== null) live.set(key.slice(RELAY_KEY_PREFIX.length), address);
      });
    } while (cursor !== "0");
    return live;
  }

  async close(): Promise<void> {
    // The Redis connection belongs to the caller, who closes it.
  }

  private liveEntries(clientSpiffeId: string, fields: Record<string, string>): RouteEntry[] {
    const now = this.now();
    const entries: RouteEntry[] = [];
    for (const [relayId, raw] of Object.entries(fields)) {
      const parsed = JSON.parse(raw) as { tenant: string; serial: string; connectedAt: number; expiresAt: number };
      if (parsed.expiresAt <= now) continue;
      entries.push({
        clientSpiffeId,
        tenant: parsed.tenant,
        relayId,
        serial: parsed.serial,
        connectedAt: new Date(parsed.connectedAt),
        expiresAt: new Date(parsed.expiresAt),
      });
    }
    return entries;
  }
}
