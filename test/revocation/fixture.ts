import { CAServiceClient, type Revocation } from "../../gen/ewii/ca/v1/ca.js";
import { startCaService, type RunningCaService } from "../../services/ca/index.js";
import { credentialPaths } from "../../services/ca/credentials.js";
import { revoke } from "../../services/ca/revocations.js";
import { createTenant } from "../../services/ca/tenants.js";
import { silentLogger } from "../../services/core/log.js";
import { DenySet, RedisRevocationBus, RevocationFollower, redisConnectionFromConfig, type RevocationSource } from "../../services/core/revocation/index.js";
import { caRevocationSource, dialCa } from "../../services/core/workload/ca-link.js";
import { loadCredentials } from "../../services/core/workload/credentials.js";
import { CaFixture, OPERATOR_TD } from "../ca/fixture.js";
import { TestRedis } from "./redis-server.js";

export const TENANT_TD = `acme.tenants.${OPERATOR_TD}`;
const ADMIN_ID = `spiffe://${OPERATOR_TD}/admin/alice`;

/** A follower under test, with the revocations it applied in order. */
export interface TestFollower {
  follower: RevocationFollower;
  denySet: DenySet;
  applied: number[];
  /** performance.now() when each sequence was applied. */
  appliedAtMs: Map<number, number>;
  bus: RedisRevocationBus;
  stop(): Promise<void>;
}

/**
 * A CA that publishes on its own redis-server, and followers that read
 * the CA through a relay's credentials. The CA can stop and start again
 * on a new port: followers always dial the current address.
 */
export class RevocationFixture {
  readonly ca = new CaFixture();
  ca_running: RunningCaService | undefined;
  private caClient: CAServiceClient | undefined;
  private readonly followers: TestFollower[] = [];

  private constructor(readonly redis: TestRedis) {}

  static async start(): Promise<RevocationFixture> {
    const fixture = new RevocationFixture(await TestRedis.start());
    await fixture.startCa();
    return fixture;
  }

  async startCa(): Promise<RunningCaService> {
    this.ca_running = await startCaService(
      { listen: "127.0.0.1:0", data_dir: this.ca.dataDir, svid_ttl_seconds: 86_400, token_ttl_seconds: 900, log_level: "info", redis: { url: this.redis.url, tls: false } },
      { logger: silentLogger(), kek: this.ca.kek(), now: this.ca.clock.now },
    );
    // The CA fixture's admin and enrollment helpers dial its `running` service.
    this.ca.running = this.ca_running;
    return this.ca_running;
  }

  async stopCa(): Promise<void> {
    this.caClient?.close();
    this.caClient = undefined;
    await this.ca.stop();
    this.ca_running = undefined;
  }

  /** Reads revocations from whichever CA is running; fails like an unreachable CA when none is. */
  source(): RevocationSource {
    return {
      listRevocations: (since) => {
        if (this.ca_running === undefined) return Promise.reject(new Error("CA is stopped"));
        this.caClient ??= dialCa(`127.0.0.1:${this.ca_running.port}`, loadCredentials(credentialPaths(this.ca.dataDir, "relay").dir), OPERATOR_TD);
        return caRevocationSource(this.caClient).listRevocations(since);
      },
    };
  }

  async follower(options: { pollIntervalMs?: number; stalenessBoundMs?: number; onStaleChange?: (stale: boolean) => void } = {}): Promise<TestFollower> {
    const denySet = new DenySet();
    const applied: number[] = [];
    const appliedAtMs = new Map<number, number>();
    const bus = new RedisRevocationBus({ connect: redisConnectionFromConfig({ url: this.redis.url }), logger: silentLogger() });
    const follower = new RevocationFollower({
      source: this.source(),
      denySet,
      bus,
      logger: silentLogger(),
      pollIntervalMs: options.pollIntervalMs ?? 60_000,
      stalenessBoundMs: options.stalenessBoundMs ?? 60_000,
      onRevoked: (revocation: Revocation) => {
        applied.push(Number(revocation.sequence));
        appliedAtMs.set(Number(revocation.sequence), performance.now());
      },
      onStaleChange: options.onStaleChange,
    });
    await follower.start();
    const entry: TestFollower = {
      follower,
      denySet,
      applied,
      appliedAtMs,
      bus,
      stop: async () => {
        await follower.stop();
        await bus.close();
      },
    };
    this.followers.push(entry);
    return entry;
  }

  /** Revokes a client SPIFFE ID through the CA's own revoke path (persist, then publish). */
  async revokeClient(name: string): Promise<number> {
    if (this.ca_running === undefined) throw new TypeError("CA not started");
    // The CA accepts revocations only for trust domains it serves.
    if (this.ca_running.store.getTenant("acme") === undefined) createTenant(this.ca_running.context, "acme", ADMIN_ID);
    const record = await revoke(this.ca_running.context, { spiffeId: `spiffe://${TENANT_TD}/client/${name}` }, "test", ADMIN_ID);
    return record.sequence;
  }

  latestSequence(): number {
    if (this.ca_running === undefined) throw new TypeError("CA not started");
    return this.ca_running.store.latestRevocationSequence();
  }

  async dispose(): Promise<void> {
    for (const follower of this.followers.splice(0)) await follower.stop();
    await this.stopCa();
    await this.ca.dispose();
    await this.redis.stop();
  }
}
