import { createPrivateKey, randomBytes } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { stringify as stringifyYaml } from "yaml";
import winston from "winston";
import type { QueryRequest, SessionMessage } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { credentialPaths, enrollWithToken, initOperator, Kek, startCaService, type RunningCaService } from "../../services/ca/index.js";
import { activeCaOf, signingCaOf } from "../../services/ca/context.js";
import { createTenant, tenantTrustDomain } from "../../services/ca/tenants.js";
import { createJoinToken } from "../../services/ca/tokens.js";
import { clientConfigSchema, type ClientConfig } from "../../services/client/config.js";
import { startClient, type RunningClient } from "../../services/client/runtime.js";
import type { QueryRunner } from "../../services/client/session-endpoint.js";
import { BundleSet, derToPem, generateKeyPair, issueX509Svid, pemToDerList, privateKeyToPem, SpiffeId, verifyX509Svid } from "../../services/core/identity/index.js";
import { callUnary, channelOptions, createClientCredentials, dialTarget } from "../../services/core/grpc/index.js";
import { RelayServiceClient, RoutedFrame, type ClientStream as ListedStream } from "../../gen/ewii/relay/v1/relay.js";
import type { RelayCore } from "../../services/relay/relay-core.js";
import { CAServiceClient } from "../../gen/ewii/ca/v1/ca.js";
import type { Logger } from "../../services/core/log.js";
import type { RouteRegistry } from "../../services/core/routes/index.js";
import { InMemoryRouteRegistry } from "../../services/core/routes/index.js";
import type { PeerVerifier } from "../../services/core/session/index.js";
import { dialCa, fetchTrustBundles } from "../../services/core/workload/ca-link.js";
import { loadCredentials, writeCredentialFiles } from "../../services/core/workload/credentials.js";
import { HubConnection } from "../../services/hub/connection.js";
import { SessionConnector, type HubIdentity } from "../../services/hub/connector.js";
import { loadRelayConfig, type RelayConfig } from "../../services/relay/config.js";
import { startRelay, type RunningRelay } from "../../services/relay/server.js";

export const OPERATOR_TD = "operator.test";
export const ADMIN_SPIFFE_ID = `spiffe://${OPERATOR_TD}/admin/admin`;

/** Short timers so that failures and recoveries show within a second or two. */
export const FAST_TIMERS = {
  heartbeat_interval_ms: 200,
  dead_peer_timeout_ms: 1000,
  route_lease_ms: 1500,
  revocation_poll_ms: 100,
  bundle_refresh_ms: 200,
} as const;

/** A winston logger at debug level whose JSON lines are kept in memory. */
export class CapturedLog {
  readonly lines: string[] = [];
  readonly logger: Logger;

  constructor() {
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        this.lines.push(chunk.toString("utf8"));
        done();
      },
    });
    this.logger = winston.createLogger({ level: "debug", format: winston.format.json(), transports: [new winston.transports.Stream({ stream: sink })] });
  }

  /** Parsed lines whose message equals `message`. */
  entries(message: string): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.message === message);
  }

  text(): string {
    return this.lines.join("");
  }
}

/** Polls `check` every 20 ms until it returns true, or throws after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

/** Awaits a promise that must reject and returns the error. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err: unknown) {
    return err instanceof Error ? err : new Error(String(err));
  }
  throw new Error("expected a rejection, but the promise resolved");
}

/**
 * A query runner that answers every request with one column, one row
 * holding the request's `marker` parameter (or "pong"), and an "ok"
 * summary. It records the request ids it ran.
 */
export class CannedRunner implements QueryRunner {
  readonly ran: string[] = [];

  async handle(request: QueryRequest, out: { send(message: SessionMessage): Promise<void> }, _signal: AbortSignal): Promise<void> {
    this.ran.push(Buffer.from(request.requestId).toString("hex"));
    const echoed = request.params.marker?.stringValue ?? "pong";
    await out.send({ columns: { requestId: request.requestId, names: ["echo"], types: ["text"] } });
    await out.send({ rows: { requestId: request.requestId, rows: [{ values: [{ stringValue: echoed }] }] } });
    await out.send({
      summary: {
        requestId: request.requestId,
        status: "ok",
        message: "",
        rowCount: 1n,
        byteCount: BigInt(echoed.length),
        rowsSha256: "",
        sqlSha256: request.sqlSha256,
        paramsSha256: "",
        signature: Buffer.alloc(0),
        signerSerial: "",
        elapsedMs: 0,
      },
    });
  }
}

/** Builds a query request for the canned runner. */
export function queryRequest(marker?: string): QueryRequest {
  return {
    requestId: randomBytes(16),
    dataset: "demo",
    queryId: "echo",
    sqlSha256: "0".repeat(64),
    params: marker === undefined ? {} : { marker: { stringValue: marker } },
    maxRows: 0,
    deadlineUnixMs: 0n,
    callerSpiffeId: `spiffe://${OPERATOR_TD}/caller/reports`,
    sqlSha256ByEngine: {},
    paramsSalt: randomBytes(32),
  };
}

/** Runs one query over a connection and returns every message up to the summary. */
export async function runQuery(connector: SessionConnector, clientSpiffeId: string, request: QueryRequest = queryRequest()): Promise<SessionMessage[]> {
  const connection = await connector.connect(clientSpiffeId, new AbortController().signal);
  const messages: SessionMessage[] = [];
  for await (const message of (connection as HubConnection).query(request, new AbortController().signal)) messages.push(message);
  return messages;
}

export interface EnrolledClient {
  spiffeId: string;
  serial: string;
  identityDir: string;
}

export interface FixtureClient {
  running: RunningClient;
  runner: CannedRunner;
  log: CapturedLog;
}

/**
 * An operator trust domain in a temporary directory with a running CA,
 * tenants "acme" and "globex", relays on loopback and a hub-side
 * SessionConnector. Everything runs in this process over real mTLS.
 */
export class TransportFixture {
  readonly dataDir = mkdtempSync(join(tmpdir(), "ewii-transport-test-"));
  readonly kekBytes = randomBytes(32);
  readonly routes: RouteRegistry;
  readonly relays: RunningRelay[] = [];
  readonly relayLogs: CapturedLog[] = [];
  readonly clients: FixtureClient[] = [];
  readonly connectors: SessionConnector[] = [];
  ca!: RunningCaService;
  private readonly bundles = new BundleSet();

  constructor(routes: RouteRegistry = new InMemoryRouteRegistry()) {
    this.routes = routes;
    initOperator({
      dataDir: this.dataDir,
      operatorTrustDomain: OPERATOR_TD,
      kek: new Kek(Buffer.from(this.kekBytes)),
      services: ["ca", "relay", "hub"],
      admins: ["admin"],
      callers: ["reports"],
    });
  }

  static async start(options: { relays?: number; routes?: RouteRegistry } = {}): Promise<TransportFixture> {
    const fixture = new TransportFixture(options.routes);
    fixture.ca = await startCaService(
      { listen: "127.0.0.1:0", data_dir: fixture.dataDir, svid_ttl_seconds: 3600, token_ttl_seconds: 900, log_level: "info" },
      { logger: new CapturedLog().logger, kek: new Kek(Buffer.from(fixture.kekBytes)) },
    );
    createTenant(fixture.ca.context, "acme", ADMIN_SPIFFE_ID);
    createTenant(fixture.ca.context, "globex", ADMIN_SPIFFE_ID);
    for (let i = 0; i < (options.relays ?? 1); i++) await fixture.startRelay();
    await fixture.refreshBundles();
    return fixture;
  }

  /** Directory of the credentials `initOperator` wrote for an operator identity. */
  operatorDir(name: string): string {
    return credentialPaths(this.dataDir, name).dir;
  }

  relayConfig(overrides: Record<string, unknown> = {}): RelayConfig {
    return loadRelayConfig(undefined, {
      listen: "127.0.0.1:0",
      relay_id: `relay-${this.relays.length + 1}`,
      credentials_dir: this.operatorDir("relay"),
      ca_address: this.ca.address,
      operator_trust_domain: OPERATOR_TD,
      log_level: "debug",
      ...FAST_TIMERS,
      ...overrides,
    });
  }

  /** Starts a relay, by default on a free port; its log is captured at debug level. */
  async startRelay(overrides: Record<string, unknown> = {}): Promise<RunningRelay> {
    const log = new CapturedLog();
    const relay = await startRelay(this.relayConfig(overrides), { logger: log.logger, routes: this.routes });
    this.relays.push(relay);
    this.relayLogs.push(log);
    return relay;
  }

  /** Enrolls a client of `tenant` at `path` with a join token over the CA's gRPC API. */
  async enroll(tenant: string, path: string): Promise<EnrolledClient> {
    const { token } = createJoinToken(this.ca.context, { tenant, spiffeIdPath: path, ttlSeconds: 0, callerSpiffeId: ADMIN_SPIFFE_ID });
    const keyPair = generateKeyPair();
    const enrolled = await enrollWithToken({ caAddress: this.ca.address, token, keyPair });
    const identityDir = join(this.dataDir, "clients", `${tenant}${path.replaceAll("/", "-")}`);
    writeCredentialFiles(identityDir, { svid: enrolled.certChainPem, key: enrolled.privateKeyPem, operatorBundle: enrolled.operatorBundle.pem, tenantBundle: enrolled.tenantBundle.pem });
    return { spiffeId: enrolled.spiffeId, serial: enrolled.serial, identityDir };
  }

  clientConfig(identityDir: string, overrides: Partial<Record<keyof ClientConfig, unknown>> = {}): ClientConfig {
    return clientConfigSchema.parse({
      identity_dir: identityDir,
      ca: this.ca.address,
      relays: this.relays.map((relay) => relay.address),
      heartbeat_interval_ms: FAST_TIMERS.heartbeat_interval_ms,
      dead_peer_timeout_ms: FAST_TIMERS.dead_peer_timeout_ms,
      reconnect: { initial_ms: 50, max_ms: 400 },
      datasets: { demo: { engine: "sqlite", path: join(this.dataDir, "unused.db"), queries: { echo: { sql: "SELECT :marker AS echo", params: { marker: { type: "text" } } } } } },
      ...overrides,
    });
  }

  /** Starts a client runtime with a canned query runner and a captured log. */
  startClient(identityDir: string, overrides: Partial<Record<keyof ClientConfig, unknown>> = {}): FixtureClient {
    const log = new CapturedLog();
    const runner = new CannedRunner();
    const running = startClient(this.clientConfig(identityDir, overrides), { logger: log.logger, runner });
    const client = { running, runner, log };
    this.clients.push(client);
    return client;
  }

  /** Reads an operator identity's credentials in the form SessionConnector takes. */
  hubIdentity(name = "hub"): HubIdentity {
    const credentials = loadCredentials(this.operatorDir(name));
    return {
      certChainPem: credentials.certChainPem,
      privateKeyPem: credentials.privateKeyPem,
      certChainDer: pemToDerList(credentials.certChainPem),
      privateKey: createPrivateKey(credentials.privateKeyPem),
      operatorBundlePem: credentials.operatorBundlePem,
    };
  }

  /** Verifies a client chain against the tenant bundles fetched from the CA. */
  get verifyClient(): PeerVerifier {
    return (chainDer) => {
      const verified = verifyX509Svid(chainDer, this.bundles);
      return { spiffeId: verified.spiffeId.toString(), publicKey: verified.leaf.publicKey, serial: verified.serial };
    };
  }

  /** A hub-side connector that acts with operator identity `name`. */
  connector(options: { name?: string; staticRelays?: string[]; logger?: Logger } = {}): SessionConnector {
    const identity = this.hubIdentity(options.name);
    const connector = new SessionConnector({
      operatorTrustDomain: OPERATOR_TD,
      routes: this.routes,
      staticRelays: options.staticRelays ?? [],
      identity: () => identity,
      verifyClient: this.verifyClient,
      logger: options.logger ?? new CapturedLog().logger,
      connectTimeoutMs: 3000,
    });
    this.connectors.push(connector);
    return connector;
  }

  async refreshBundles(): Promise<void> {
    const credentials = loadCredentials(this.operatorDir("hub"));
    const ca = dialCa(this.ca.address, credentials, OPERATOR_TD);
    try {
      for (const bundle of await fetchTrustBundles(ca)) this.bundles.set(bundle);
    } finally {
      ca.close();
    }
  }

  /**
   * Writes an identity folder holding a certificate for `spiffeId` that the
   * active CA of `signerTenant` signed, valid from `notBefore` to `notAfter`.
   * With a signer tenant other than the SPIFFE ID's, the certificate claims
   * an identity its issuer does not own.
   */
  craftIdentity(name: string, options: { spiffeId: string; signerTenant: string; notBefore: Date; notAfter: Date }): string {
    const ctx = this.ca.context;
    const signer = signingCaOf(ctx, activeCaOf(ctx, tenantTrustDomain(options.signerTenant, OPERATOR_TD)));
    const keyPair = generateKeyPair();
    const issued = issueX509Svid({ ca: signer, subjectPublicKeySpkiDer: keyPair.publicKeySpkiDer, spiffeId: SpiffeId.parse(options.spiffeId), notBefore: options.notBefore, notAfter: options.notAfter });
    const identityDir = join(this.dataDir, "crafted", name);
    writeCredentialFiles(identityDir, { svid: derToPem(issued.certDer, "CERTIFICATE"), key: privateKeyToPem(keyPair.privateKey), operatorBundle: this.operatorBundlePem() });
    return identityDir;
  }

  /** A RelayService client that authenticates as operator identity `name`, or anonymously. */
  relayClient(relay: RunningRelay, name?: string): RelayServiceClient {
    const tls = name === undefined ? undefined : loadCredentials(this.operatorDir(name));
    const credentials = createClientCredentials({
      tls,
      trustedCasPem: this.operatorBundlePem(),
      expectServer: (spiffeId) => spiffeId === `spiffe://${OPERATOR_TD}/service/relay`,
    });
    return new RelayServiceClient(dialTarget(relay.address), credentials, channelOptions(relay.address));
  }

  /** Calls ListStreams on a relay as the admin. */
  async listStreams(relay: RunningRelay): Promise<ListedStream[]> {
    const client = this.relayClient(relay, "admin");
    try {
      return (await callUnary(client.listStreams.bind(client), {})).streams;
    } finally {
      client.close();
    }
  }

  /** A CAService client that authenticates as the admin. */
  caAdmin(): CAServiceClient {
    const credentials = createClientCredentials({
      tls: loadCredentials(this.operatorDir("admin")),
      trustedCasPem: this.operatorBundlePem(),
      expectServer: (spiffeId) => spiffeId === `spiffe://${OPERATOR_TD}/service/ca`,
    });
    return new CAServiceClient(dialTarget(this.ca.address), credentials, channelOptions(this.ca.address));
  }

  /** PEM of the operator trust bundle. */
  operatorBundlePem(): string {
    return readFileSync(credentialPaths(this.dataDir, "hub").bundle, "utf8");
  }

  async close(): Promise<void> {
    for (const connector of this.connectors.splice(0)) await connector.close();
    for (const client of this.clients.splice(0)) await client.running.stop();
    for (const relay of this.relays.splice(0)) await relay.close().catch(() => undefined);
    await this.ca.close();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * Observes what a relay's routing core forwards, as the encoded bytes of
 * each RoutedFrame, and lets a test rewrite the hub-to-client frames the
 * way a hostile relay could.
 */
export class RelayTap {
  readonly seen: Buffer[] = [];
  /** Called for each sealed hub-to-client frame instead of forwarding it; `forward` delivers a frame. */
  onSealedFromHub: ((frame: RoutedFrame, forward: (frame: RoutedFrame) => void) => void) | undefined;

  constructor(core: RelayCore) {
    const fromHub = core.fromHub.bind(core);
    const fromClient = core.fromClient.bind(core);
    core.fromHub = (sessionKey, frame) => {
      this.seen.push(Buffer.from(RoutedFrame.encode(frame).finish()));
      const forward = (delivered: RoutedFrame): void => fromHub(sessionKey, delivered);
      if (frame.sealed !== undefined && this.onSealedFromHub !== undefined) this.onSealedFromHub(frame, forward);
      else forward(frame);
    };
    core.fromClient = (client, frame) => {
      this.seen.push(Buffer.from(RoutedFrame.encode(frame).finish()));
      fromClient(client, frame);
    };
  }

  /** True when any forwarded frame contains `needle`. */
  sawBytes(needle: Buffer): boolean {
    return this.seen.some((bytes) => bytes.includes(needle));
  }
}

/** A process started by `spawnRelayProcess`. */
export interface RelayProcess {
  child: ChildProcess;
  relayId: string;
  address: string;
  /** Lines the relay wrote to stderr (its JSON log). */
  stderr: string[];
}

/**
 * Starts services/relay/main.ts as a child process with `config` written
 * to a YAML file in `dir`, and resolves once it prints its address.
 */
export async function spawnRelayProcess(dir: string, config: Record<string, unknown>): Promise<RelayProcess> {
  const file = join(dir, `relay-${randomBytes(4).toString("hex")}.yaml`);
  writeFileSync(file, stringifyYaml(config));
  const main = fileURLToPath(new URL("../../services/relay/main.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", main, file], { stdio: ["ignore", "pipe", "pipe"] });
  const stderr: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (text: string) => stderr.push(text));
  const ready = await new Promise<{ relay_id: string; address: string }>((resolve, reject) => {
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (text: string) => {
      buffered += text;
      const newline = buffered.indexOf("\n");
      if (newline >= 0) resolve(JSON.parse(buffered.slice(0, newline)) as { relay_id: string; address: string });
    });
    child.once("exit", (code) => reject(new Error(`relay process exited with code ${code} before it listened: ${stderr.join("").slice(-2000)}`)));
  });
  return { child, relayId: ready.relay_id, address: ready.address, stderr };
}
