import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { status } from "@grpc/grpc-js";
import { startAuditService, type RunningAuditService } from "../audit/index.js";
import {
  caStorePath,
  credentialPaths,
  enrollWithToken,
  initOperator,
  isRevoked,
  loadCaConfig,
  loadKek,
  openCaContext,
  renewOperatorCredentialFiles,
  startCaService,
  type OperatorIdentityKind,
  type RunningCaService,
} from "../ca/index.js";
import { createQueryHandler } from "../client/query-runner.js";
import { startClient, type RunningClient } from "../client/runtime.js";
import { EwiiError, errorCodeOf } from "../core/errors.js";
import { callUnary } from "../core/grpc/index.js";
import { generateKeyPair, privateKeyToPem } from "../core/identity/index.js";
import { LogField, type Logger } from "../core/log.js";
import { InMemoryRouteRegistry } from "../core/routes/index.js";
import { InProcessRevocationBus } from "../core/revocation/index.js";
import { describeLeaf, loadCredentials, writeCredentialFiles } from "../core/workload/credentials.js";
import { loadHubConfig } from "../hub/config.js";
import { startHub, type RunningHub } from "../hub/server.js";
import { applyPolicyFile } from "../policy/apply-cli.js";
import { documentSha256, parsePolicy } from "../policy/document.js";
import { loadPolicyConfig, startPolicyService, type RunningPolicyService } from "../policy/server.js";
import { loadAuditConfig } from "../audit/index.js";
import { loadRelayConfig } from "../relay/config.js";
import { startRelay, type RunningRelay } from "../relay/server.js";
import { caClient, policyClient, type CliContext } from "../cli/connect.js";
import { credentialsDir, writeEndpoints, type Endpoints } from "../cli/home.js";
import { ensureKekFile, OPERATOR_SERVICES, operatorPeerVerifier } from "../cli/commands/serve.js";
import { writeDemoClientConfig, DEMO_CLIENT_PATH, DEMO_TENANT } from "./demo-client.js";

export const REPO_ROOT = resolve(new URL("../..", import.meta.url).pathname);
export const DEMO_POLICY_FILE = join(REPO_ROOT, "examples/policy/demo.yaml");
export const OPERATOR_TRUST_DOMAIN = "operator.example";
/** Admins and internal callers `ewii dev` creates besides the services. */
const DEV_ADMINS = ["admin"];
const DEV_CALLERS = ["reports", "billing"];
/** Operator credentials expiring within this time are re-issued before the services start: one hour. */
export const CREDENTIAL_REFRESH_MARGIN_MS = 3600 * 1000;

export interface DevStackOptions {
  /** Ewii home folder: CA store, credentials, service data and endpoints.json. */
  home: string;
  /** First port; CA, policy, audit, relay and hub take five in a row. 0 picks free ports. */
  basePort: number;
  logger: Logger;
  /** Number of relays to start; the demo client dials all of them. */
  relays?: number;
  /** Policy file applied at start; the demo policy by default. */
  policyFile?: string;
}

export interface DevStack {
  home: string;
  endpoints: Endpoints;
  ca: RunningCaService;
  policy: RunningPolicyService;
  audit: RunningAuditService;
  relays: RunningRelay[];
  hub: RunningHub;
  client: RunningClient;
  clientRunner: ReturnType<typeof createQueryHandler>;
  clientSpiffeId: string;
  admin: CliContext;
  /** Credentials context of the demo internal caller (spiffe://operator.example/caller/reports). */
  caller: CliContext;
  close(): Promise<void>;
}

function listenAt(basePort: number, offset: number): string {
  return `127.0.0.1:${basePort === 0 ? 0 : basePort + offset}`;
}

/** Waits until `check` returns true, polling every 50 ms, or throws after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new EwiiError("ERR_DEV_TIMEOUT", `timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

/**
 * Starts the whole product on embedded defaults. On first use it
 * initializes the operator trust domain. It runs CA, policy, audit, relays
 * and hub, each its own gRPC server over mTLS on loopback, and applies the
 * demo policy. Then it enrolls a demo client of tenant "acme" serving the
 * Chinook SQLite database and waits until the client is connected. On a
 * later start it first re-issues stale operator credentials and enrolls
 * the demo client again when its SVID has expired or was revoked.
 */
export async function startDevStack(options: DevStackOptions): Promise<DevStack> {
  const home = resolve(options.home);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const kekFile = join(home, "kek");
  ensureKekFile(kekFile);
  const logger = options.logger;
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close().catch((err: unknown) => logger.warn("shutdown step failed", { cause: String(err) }));
  };

  try {
    if (!existsSync(caStorePath(home))) {
      initOperator({ dataDir: home, operatorTrustDomain: OPERATOR_TRUST_DOMAIN, kek: loadKek({ kekFile }), services: OPERATOR_SERVICES, admins: DEV_ADMINS, callers: DEV_CALLERS, logger });
    }
    const clientDir = join(home, "clients", "acme-site-1");
    const { reenrollClient } = refreshCredentials({ home, kekFile, clientIdentityDir: join(clientDir, "identity"), logger });
    const credentials = (name: string): string => credentialsDir(home, name);

    // Without Redis, one in-process bus carries revocations from the CA to
    // the relays and the hub with the same semantics as the Redis channel.
    const revocationBus = new InProcessRevocationBus();
    closers.push(() => revocationBus.close());
    const ca = await startCaService(loadCaConfig(undefined, { data_dir: home, kek_file: kekFile, listen: listenAt(options.basePort, 0), operator_trust_domain: OPERATOR_TRUST_DOMAIN }), { logger, revocationBus });
    closers.push(() => ca.close());

    const policyConfig = loadPolicyConfig(undefined, { listen: listenAt(options.basePort, 1), data_dir: join(home, "policy"), credentials_dir: credentials("policy"), ca_address: ca.address, operator_trust_domain: OPERATOR_TRUST_DOMAIN });
    mkdirSync(policyConfig.data_dir, { recursive: true, mode: 0o700 });
    const policy = await startPolicyService(policyConfig, { logger, verifyPeer: operatorPeerVerifier(policyConfig.credentials_dir, OPERATOR_TRUST_DOMAIN) });
    closers.push(() => policy.close());

    const auditConfig = loadAuditConfig(undefined, { listen: listenAt(options.basePort, 2), data_dir: join(home, "audit"), credentials_dir: credentials("audit"), ca_address: ca.address, operator_trust_domain: OPERATOR_TRUST_DOMAIN });
    mkdirSync(auditConfig.data_dir, { recursive: true, mode: 0o700 });
    const audit = await startAuditService(auditConfig, { logger, verifyPeer: operatorPeerVerifier(auditConfig.credentials_dir, OPERATOR_TRUST_DOMAIN) });
    closers.push(() => audit.close());

    // One route registry shared in this process replaces Redis.
    const routes = new InMemoryRouteRegistry();
    const relays: RunningRelay[] = [];
    for (let i = 0; i < (options.relays ?? 1); i++) {
      const relayConfig = loadRelayConfig(undefined, {
        listen: options.basePort === 0 ? "127.0.0.1:0" : `127.0.0.1:${options.basePort + 3 + (i === 0 ? 0 : 10 + i)}`,
        relay_id: `relay-${i + 1}`,
        credentials_dir: credentials("relay"),
        ca_address: ca.address,
        operator_trust_domain: OPERATOR_TRUST_DOMAIN,
      });
      const relay = await startRelay(relayConfig, { logger, routes, revocationBus });
      relays.push(relay);
      closers.push(() => relay.close());
    }

    const hubConfig = loadHubConfig(undefined, {
      listen: listenAt(options.basePort, 4),
      credentials_dir: credentials("hub"),
      ca_address: ca.address,
      policy_address: policy.server.address,
      audit_address: audit.server.address,
      relays: relays.map((relay) => relay.address),
      operator_trust_domain: OPERATOR_TRUST_DOMAIN,
    });
    const hub = await startHub(hubConfig, { logger, routes, revocationBus });
    closers.push(() => hub.close());

    const endpoints: Endpoints = {
      operator_trust_domain: OPERATOR_TRUST_DOMAIN,
      ca: ca.address,
      policy: policy.server.address,
      audit: audit.server.address,
      hub: hub.address,
      relays: relays.map((relay) => relay.address),
    };
    writeEndpoints(home, endpoints);
    const admin: CliContext = { home, endpoints, credentials: loadCredentials(credentials("admin")), json: false };
    const caller: CliContext = { home, endpoints, credentials: loadCredentials(credentials("reports")), json: false };

    await applyPolicyIfChanged(admin, options.policyFile ?? DEMO_POLICY_FILE);
    await waitFor("the hub's first policy snapshot", () => hub.policy.current() !== undefined);

    await enrollDemoClient(admin, join(clientDir, "identity"), reenrollClient);
    const clientConfig = writeDemoClientConfig({ dir: clientDir, caAddress: ca.address, relays: endpoints.relays });
    const clientRunner = createQueryHandler(clientConfig, logger);
    const client = startClient(clientConfig, { logger, runner: clientRunner, onRenewed: () => clientRunner.signer.reload() });
    closers.push(async () => {
      await client.stop();
      await clientRunner.close();
    });
    await waitFor("the demo client to connect to every relay", () => relays.every((relay) => relay.core.listClients().some((stream) => stream.spiffeId === client.spiffeId)));

    return { home, endpoints, ca, policy, audit, relays, hub, client, clientRunner, clientSpiffeId: client.spiffeId, admin, caller, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

async function applyPolicyIfChanged(admin: CliContext, file: string): Promise<void> {
  const client = policyClient(admin);
  try {
    const wanted = documentSha256(parsePolicy(readFileSync(file, "utf8"), file));
    try {
      const current = await callUnary(client.getPolicy.bind(client), {});
      const currentSha = current.snapshot === undefined ? "" : documentSha256(parsePolicy(current.snapshot.documentJson, "current policy"));
      if (currentSha === wanted) return;
    } catch (err) {
      if ((err as { code?: number }).code !== status.NOT_FOUND) throw err;
    }
    await applyPolicyFile(file, client, { print: () => undefined });
  } finally {
    client.close();
  }
}

/** Reads the leaf of an SVID file, or returns undefined when the file is missing or unreadable. */
function readLeaf(svidFile: string): ReturnType<typeof describeLeaf> | undefined {
  try {
    return describeLeaf(readFileSync(svidFile, "utf8"), svidFile);
  } catch {
    // The caller re-issues the credential, which rewrites the file.
    return undefined;
  }
}

/**
 * Re-issues, straight from the CA store, every operator credential that is
 * missing, expired, revoked or within CREDENTIAL_REFRESH_MARGIN_MS of
 * expiry, because a service renews only over mTLS with a valid SVID. A day
 * after the last run every 24-hour SVID has expired. Returns whether the
 * demo client must enroll again because its SVID is expired or revoked.
 */
function refreshCredentials(options: { home: string; kekFile: string; clientIdentityDir: string; logger: Logger }): { reenrollClient: boolean } {
  const kek = loadKek({ kekFile: options.kekFile });
  try {
    const ctx = openCaContext({ dataDir: options.home, kek, logger: options.logger });
    try {
      const now = ctx.now();
      const staleReason = (leaf: ReturnType<typeof describeLeaf> | undefined, marginMs: number): string | undefined => {
        if (leaf === undefined) return "missing";
        if (leaf.notAfter.getTime() <= now.getTime()) return "expired";
        if (leaf.notAfter.getTime() - now.getTime() < marginMs) return "expires within the hour";
        const revoked = isRevoked(ctx, { spiffeId: leaf.spiffeId.toString(), serial: leaf.serial, trustDomain: leaf.spiffeId.trustDomain });
        return revoked ? "revoked" : undefined;
      };

      const identities: { kind: OperatorIdentityKind; name: string }[] = [
        ...OPERATOR_SERVICES.map((name) => ({ kind: "service" as const, name })),
        ...DEV_ADMINS.map((name) => ({ kind: "admin" as const, name })),
        ...DEV_CALLERS.map((name) => ({ kind: "caller" as const, name })),
      ];
      for (const identity of identities) {
        const reason = staleReason(readLeaf(credentialPaths(options.home, identity.name).svid), CREDENTIAL_REFRESH_MARGIN_MS);
        if (reason === undefined) continue;
        const { credential } = renewOperatorCredentialFiles(ctx, options.home, identity);
        options.logger.info("operator credential re-issued before start", { [LogField.spiffeId]: credential.spiffeId, reason, not_after: credential.notAfter.toISOString() });
      }

      // The running client renews a valid SVID itself; only an expired or revoked one needs a new join token.
      const clientSvid = join(options.clientIdentityDir, "svid.pem");
      if (!existsSync(clientSvid)) return { reenrollClient: false };
      const clientLeaf = readLeaf(clientSvid);
      const clientReason = staleReason(clientLeaf, 0);
      if (clientReason === undefined) return { reenrollClient: false };
      options.logger.info("demo client enrolls again", { [LogField.spiffeId]: clientLeaf?.spiffeId.toString() ?? "", reason: clientReason });
      return { reenrollClient: true };
    } finally {
      ctx.store.close();
    }
  } finally {
    kek.destroy();
  }
}

async function enrollDemoClient(admin: CliContext, identityDir: string, force: boolean): Promise<void> {
  if (!force && existsSync(join(identityDir, "svid.pem"))) return;
  const client = caClient(admin);
  try {
    try {
      await callUnary(client.getTenant.bind(client), { name: DEMO_TENANT });
    } catch (err) {
      if (errorCodeOf(err) !== "ERR_TENANT_NOT_FOUND") throw err;
      await callUnary(client.createTenant.bind(client), { name: DEMO_TENANT });
    }
    const token = await callUnary(client.createJoinToken.bind(client), { tenant: DEMO_TENANT, spiffeIdPath: DEMO_CLIENT_PATH, ttlSeconds: 0 });
    const keyPair = generateKeyPair();
    const enrolled = await enrollWithToken({ caAddress: admin.endpoints.ca, token: token.token, keyPair });
    writeCredentialFiles(identityDir, { svid: enrolled.certChainPem, key: privateKeyToPem(keyPair.privateKey), operatorBundle: enrolled.operatorBundle.pem, tenantBundle: enrolled.tenantBundle.pem });
  } finally {
    client.close();
  }
}
