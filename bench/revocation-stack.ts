/**
 * The deployment bench/revocation.ts measures. This process runs the CA
 * (publishing revocations on Redis), the policy and the audit services.
 * Relays run as services/relay/main.ts processes, hubs as
 * bench/revocation-hub.ts processes, and client streams come from
 * bench/revocation-load.ts processes. Every service is on loopback, on
 * its own redis-server.
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startAuditService, loadAuditConfig } from "../services/audit/index.js";
import { credentialPaths, initOperator, Kek, startCaService, type RunningCaService } from "../services/ca/index.js";
import { issueSvid } from "../services/ca/issuance.js";
import { createTenant, tenantTrustDomain } from "../services/ca/tenants.js";
import type { CliContext } from "../services/cli/connect.js";
import { operatorPeerVerifier } from "../services/cli/commands/serve.js";
import { derToPem, generateKeyPair, privateKeyToPem, SpiffeId } from "../services/core/identity/index.js";
import { silentLogger } from "../services/core/log.js";
import { loadCredentials } from "../services/core/workload/credentials.js";
import { loadPolicyConfig, startPolicyService } from "../services/policy/server.js";
import { spawnRelayProcess, type RelayProcess } from "../test/transport/fixture.js";
import { TestRedis } from "../test/revocation/redis-server.js";
import type { HubReply, HubRequest, LoadReply, LoadRequest, LoadStream } from "./revocation-ipc.js";

export const OPERATOR_TD = "bench.example";
const TENANT = "bench";
const SERVICES = ["ca", "policy", "audit", "relay", "hub"];
/**
 * Every idle stream writes one heartbeat per interval, 10,000 writes at
 * full scale. A long interval and dead-peer timeout keep that work out of
 * the measurement without letting a relay drop a stream during setup.
 */
const HEARTBEAT_INTERVAL_MS = 30_000;
const DEAD_PEER_TIMEOUT_MS = 120_000;
/** Streams each load process opens at the same time. */
const OPEN_CONCURRENCY_PER_LOADER = 50;
/** SVIDs issued per CA store transaction. */
const ISSUE_BATCH = 1_000;

/** One client certificate handed to a load process. */
export interface BenchClient {
  spiffeId: string;
  serial: string;
  notBeforeMs: number;
}

/** A forked child process that speaks `Request` and replies with `Reply`. */
export class Child<Request, Reply extends { type: string }> {
  private readonly listeners = new Set<(reply: Reply) => void>();

  constructor(readonly process: ChildProcess) {
    process.on("message", (reply: Reply) => {
      for (const listener of this.listeners) listener(reply);
    });
  }

  static fork<Request, Reply extends { type: string }>(module: string): Child<Request, Reply> {
    const execArgv = ["--import", "tsx"];
    return new Child<Request, Reply>(fork(fileURLToPath(new URL(module, import.meta.url)), [], { execArgv, stdio: ["ignore", "ignore", "inherit", "ipc"] }));
  }

  send(request: Request): void {
    this.process.send(request as object);
  }

  on(listener: (reply: Reply) => void): void {
    this.listeners.add(listener);
  }

  /** Resolves with the next reply of one of `types`; rejects if the child exits first. */
  next<T extends Reply["type"]>(...types: T[]): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`child process exited with code ${code} while the bench waited for ${types.join(" or ")}`));
      const listener = (reply: Reply): void => {
        if (!types.includes(reply.type as T)) return;
        this.listeners.delete(listener);
        this.process.off("exit", onExit);
        resolve(reply as Extract<Reply, { type: T }>);
      };
      this.listeners.add(listener);
      this.process.once("exit", onExit);
    });
  }

  async kill(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = once(this.process, "exit");
    this.process.kill("SIGTERM");
    await exited;
  }
}

export type HubChild = Child<HubRequest, HubReply>;
export type LoadChild = Child<LoadRequest, LoadReply>;

/** CA, policy and audit in this process; Redis, relays and hubs as processes. */
export class RevocationStack {
  private readonly closers: (() => Promise<void>)[] = [];
  readonly relays: RelayProcess[] = [];
  readonly hubs: HubChild[] = [];
  readonly loaders: LoadChild[] = [];
  readonly clients: BenchClient[] = [];

  private constructor(
    readonly dataDir: string,
    readonly redis: TestRedis,
    readonly ca: RunningCaService,
    readonly admin: CliContext,
    readonly tenantTrustDomain: string,
  ) {}

  static async start(options: { relays: number; hubs: number }): Promise<RevocationStack> {
    const dataDir = mkdtempSync(join(tmpdir(), "ewii-bench-revocation-"));
    const kekBytes = Buffer.alloc(32, 7);
    initOperator({ dataDir, operatorTrustDomain: OPERATOR_TD, kek: new Kek(Buffer.from(kekBytes)), services: SERVICES, admins: ["admin"], callers: [] });
    const redis = await TestRedis.start();
    const ca = await startCaService(
      { listen: "127.0.0.1:0", data_dir: dataDir, svid_ttl_seconds: 3600, token_ttl_seconds: 900, log_level: "warn", redis: { url: redis.url, tls: false } },
      { logger: silentLogger(), kek: new Kek(Buffer.from(kekBytes)) },
    );
    createTenant(ca.context, TENANT, `spiffe://${OPERATOR_TD}/admin/admin`);
    const credentials = (name: string): string => credentialPaths(dataDir, name).dir;

    const policyConfig = loadPolicyConfig(undefined, { listen: "127.0.0.1:0", data_dir: join(dataDir, "policy"), credentials_dir: credentials("policy"), operator_trust_domain: OPERATOR_TD, log_level: "warn" });
    mkdirSync(policyConfig.data_dir, { recursive: true, mode: 0o700 });
    const policy = await startPolicyService(policyConfig, { logger: silentLogger(), verifyPeer: operatorPeerVerifier(policyConfig.credentials_dir, OPERATOR_TD) });
    const auditConfig = loadAuditConfig(undefined, { listen: "127.0.0.1:0", data_dir: join(dataDir, "audit"), credentials_dir: credentials("audit"), operator_trust_domain: OPERATOR_TD, log_level: "warn" });
    mkdirSync(auditConfig.data_dir, { recursive: true, mode: 0o700 });
    const audit = await startAuditService(auditConfig, { logger: silentLogger(), verifyPeer: operatorPeerVerifier(auditConfig.credentials_dir, OPERATOR_TD) });

    const admin: CliContext = {
      home: dataDir,
      endpoints: { operator_trust_domain: OPERATOR_TD, ca: ca.address, policy: policy.server.address, audit: audit.server.address, hub: "", relays: [] },
      credentials: loadCredentials(credentials("admin")),
      json: false,
    };
    const stack = new RevocationStack(dataDir, redis, ca, admin, tenantTrustDomain(TENANT, OPERATOR_TD));
    stack.closers.push(
      async () => rmSync(dataDir, { recursive: true, force: true }),
      () => redis.stop(),
      () => ca.close(),
      () => policy.close(),
      () => audit.close(),
    );

    try {
      const relays = await Promise.all(
        Array.from({ length: options.relays }, (_, i) =>
          spawnRelayProcess(dataDir, {
            listen: "127.0.0.1:0",
            relay_id: `relay-${i + 1}`,
            credentials_dir: credentials("relay"),
            ca_address: ca.address,
            operator_trust_domain: OPERATOR_TD,
            redis_url: redis.url,
            heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
            dead_peer_timeout_ms: DEAD_PEER_TIMEOUT_MS,
            log_level: "warn",
          }),
        ),
      );
      stack.relays.push(...relays);
      stack.closers.push(...relays.map((relay) => () => new Child(relay.child).kill()));

      const hubs = Array.from({ length: options.hubs }, () => Child.fork<HubRequest, HubReply>("./revocation-hub.ts"));
      stack.hubs.push(...hubs);
      stack.closers.push(...hubs.map((hub) => () => hub.kill()));
      // Listen before sending: a hub may reply while the bench awaits another.
      const replies = hubs.map((hub) => hub.next("ready", "failed"));
      for (const hub of hubs) {
        hub.send({
          type: "start",
          overrides: {
            listen: "127.0.0.1:0",
            credentials_dir: credentials("hub"),
            ca_address: ca.address,
            policy_address: policy.server.address,
            audit_address: audit.server.address,
            redis_url: redis.url,
            relays: relays.map((relay) => relay.address),
            operator_trust_domain: OPERATOR_TD,
            log_level: "warn",
          },
        });
      }
      for (const reply of await Promise.all(replies)) {
        if (reply.type === "failed") throw new Error(`a bench hub process did not start: ${reply.message}`);
      }
    } catch (err) {
      await stack.close();
      throw err;
    }
    return stack;
  }

  /**
   * Issues `count` client SVIDs straight from the tenant CA and opens one
   * stream per SVID from `loaders` processes, spread round-robin over the
   * relays. Returns how many streams the relays accepted and which failed.
   */
  async openStreams(
    count: number,
    loaders: number,
    listeners: { onProgress: (opened: number) => void; onClosed: (closed: Extract<LoadReply, { type: "closed" }>) => void },
  ): Promise<{ opened: number; failedSpiffeIds: string[]; issueSeconds: number; firstError: string }> {
    const issueStart = performance.now();
    // One key for every SVID keeps setup short. Each stream still has its
    // own certificate, serial and SPIFFE ID, and relays and hubs match
    // revocations on those. `issueSvid` records each SVID in the CA store
    // as Enroll does, so a revocation's expiry covers it.
    const keyPair = generateKeyPair();
    const streams: LoadStream[][] = Array.from({ length: loaders }, () => []);
    for (let first = 0; first < count; first += ISSUE_BATCH) {
      this.ca.context.store.transaction(() => {
        for (let i = first; i < Math.min(count, first + ISSUE_BATCH); i++) {
          const spiffeId = SpiffeId.fromParts(this.tenantTrustDomain, `/client/bench-${i}`);
          const issued = issueSvid(this.ca.context, { spiffeId, publicKeySpkiDer: keyPair.publicKeySpkiDer, issuedBy: "enroll", tenant: TENANT });
          this.clients.push({ spiffeId: spiffeId.toString(), serial: issued.record.serial, notBeforeMs: issued.record.notBefore.getTime() });
          streams[i % loaders].push({ spiffeId: spiffeId.toString(), certPem: derToPem(issued.certChainDer[0], "CERTIFICATE"), relayAddress: this.relays[i % this.relays.length].address });
        }
      });
    }
    const issueSeconds = (performance.now() - issueStart) / 1000;

    const operatorBundlePem = readFileSync(credentialPaths(this.dataDir, "relay").bundle, "utf8");
    const progress = new Map<LoadChild, number>();
    const opening: Promise<Extract<LoadReply, { type: "opened" }>>[] = [];
    for (let i = 0; i < loaders; i++) {
      const loader = Child.fork<LoadRequest, LoadReply>("./revocation-load.ts");
      this.loaders.push(loader);
      this.closers.push(() => loader.kill());
      loader.on((reply) => {
        if (reply.type === "closed") listeners.onClosed(reply);
        if (reply.type !== "progress") return;
        progress.set(loader, reply.opened);
        listeners.onProgress([...progress.values()].reduce((a, b) => a + b, 0));
      });
      loader.send({
        type: "open",
        operatorTrustDomain: OPERATOR_TD,
        operatorBundlePem,
        privateKeyPem: privateKeyToPem(keyPair.privateKey),
        streams: streams[i],
        concurrency: OPEN_CONCURRENCY_PER_LOADER,
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      });
      opening.push(loader.next("opened"));
    }
    const replies = await Promise.all(opening);
    const opened = replies.reduce((n, reply) => n + reply.opened, 0);
    return { opened, failedSpiffeIds: replies.flatMap((reply) => reply.failedSpiffeIds), issueSeconds, firstError: replies.find((reply) => reply.firstError !== "")?.firstError ?? "" };
  }

  async close(): Promise<void> {
    for (const close of this.closers.splice(0).reverse()) {
      await close().catch(() => undefined);
    }
  }
}
