import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { initOperator, loadCaConfig, loadKek, startCaService, enrollWithToken } from "../../ca/index.js";
import { loadAuditConfig, startAuditService } from "../../audit/index.js";
import { loadClientConfig } from "../../client/config.js";
import { createQueryHandler } from "../../client/query-runner.js";
import { startClient } from "../../client/runtime.js";
import { BundleSet, TrustBundle, generateKeyPair, privateKeyToPem } from "../../core/identity/index.js";
import { createLogger, type Logger } from "../../core/log.js";
import { loadCredentials, writeCredentialFiles } from "../../core/workload/credentials.js";
import { createPeerVerifier } from "../../core/workload/peer-verifier.js";
import { loadHubConfig } from "../../hub/config.js";
import { startHub } from "../../hub/server.js";
import { loadPolicyConfig, startPolicyService } from "../../policy/server.js";
import { loadRelayConfig } from "../../relay/config.js";
import { startRelay } from "../../relay/server.js";
import type { GlobalOptions } from "../connect.js";
import { defaultEndpoints, ENDPOINTS_FILE, writeEndpoints } from "../home.js";
import { prepareIdentityDir } from "../identity-dir.js";

/** Operator services `ewii init` issues SVIDs for. */
export const OPERATOR_SERVICES = ["ca", "policy", "audit", "relay", "hub"];

/** Period of the timer that keeps a long-running command's event loop alive. Its callback does nothing. */
const KEEP_ALIVE_INTERVAL_MS = 60_000;

/** Keeps a long-running command alive until SIGINT or SIGTERM, then closes it. */
export async function runUntilSignal(logger: Logger, close: () => Promise<void>): Promise<void> {
  // A pending promise does not keep Node running. A client whose relays are
  // all unreachable has only unref'd reconnect timers left, so without this
  // ref'd interval it would exit silently before its first query.
  const keepAlive = setInterval(() => undefined, KEEP_ALIVE_INTERVAL_MS);
  try {
    await new Promise<void>((done) => {
      const stop = (signal: string): void => {
        logger.info("stopping", { signal });
        close()
          .catch((err: unknown) => logger.error("shutdown failed", { cause: String(err) }))
          .finally(done);
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
    });
  } finally {
    clearInterval(keepAlive);
  }
}

/** A verifier for operator-only services: peers must hold an SVID of the operator trust domain. */
export function operatorPeerVerifier(credentialsDir: string, operatorTrustDomain: string) {
  const credentials = loadCredentials(credentialsDir);
  const bundles = new BundleSet();
  bundles.set(TrustBundle.fromPem(operatorTrustDomain, credentials.operatorBundlePem, 0));
  return createPeerVerifier(bundles);
}

/** Creates a KEK file of 32 random bytes in hex, mode 0600, unless it exists. */
export function ensureKekFile(file: string): void {
  if (existsSync(file)) return;
  writeFileSync(file, randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
}

export function registerServeCommands(program: Command, globals: () => GlobalOptions): void {
  program
    .command("init")
    .description("create the operator trust domain: root CA, service SVIDs, an admin SVID and a caller SVID")
    .requiredOption("--data-dir <dir>", "folder for the CA store and credentials")
    .option("--trust-domain <name>", "operator trust domain", "operator.example")
    .option("--kek-file <file>", "key-encryption key file (created with 32 random bytes when missing); EWII_KEK also works")
    .option("--admin <name...>", "admin identities to create", ["admin"])
    .option("--caller <name...>", "internal caller identities to create", ["reports"])
    .action((options: { dataDir: string; trustDomain: string; kekFile?: string; admin: string[]; caller: string[] }) => {
      mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
      const kekFile = options.kekFile ?? (process.env.EWII_KEK === undefined ? join(options.dataDir, "kek") : undefined);
      if (kekFile !== undefined) ensureKekFile(kekFile);
      const kek = loadKek({ kekFile });
      const result = initOperator({ dataDir: options.dataDir, operatorTrustDomain: options.trustDomain, kek, services: OPERATOR_SERVICES, admins: options.admin, callers: options.caller });
      const endpointsFile = join(options.dataDir, ENDPOINTS_FILE);
      if (!existsSync(endpointsFile)) writeEndpoints(options.dataDir, defaultEndpoints(options.trustDomain));
      process.stdout.write(`initialized ${options.trustDomain} in ${resolve(options.dataDir)}\nroot CA SHA-256: ${result.rootFingerprint}\n`);
      for (const credential of result.credentials) process.stdout.write(`  ${credential.spiffeId}  ${credential.paths.dir}\n`);
      if (kekFile !== undefined) process.stdout.write(`key-encryption key: ${resolve(kekFile)} (keep it safe; the CA cannot start without it)\n`);
      process.stdout.write(`service addresses for the CLI: ${resolve(endpointsFile)} (the default ports 7401 to 7405; edit it if the services listen elsewhere)\n`);
      process.stdout.write(`next: start the CA with "ewii ca --data-dir ${options.dataDir}", then policy, audit, relay and hub (configs in examples/operator/)\n`);
    });

  program
    .command("ca")
    .description("run the CA service")
    .option("-c, --config <file>", "YAML config file")
    .option("--data-dir <dir>", "folder initialized by ewii init")
    .option("--listen <host:port>", "address to listen on")
    .action(async (options: { config?: string; dataDir?: string; listen?: string }) => {
      const config = loadCaConfig(options.config, { data_dir: options.dataDir, listen: options.listen });
      const logger = createLogger({ level: config.log_level, defaultMeta: { service: "ca" } });
      const ca = await startCaService(config, { logger });
      await runUntilSignal(logger, () => ca.close());
    });

  const policy = program.commands.find((command) => command.name() === "policy") ?? program.command("policy").description("policy service and policy documents");
  policy
    .command("serve")
    .description("run the policy service")
    .option("-c, --config <file>", "YAML config file")
    .action(async (options: { config?: string }) => {
      const config = loadPolicyConfig(options.config);
      mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
      const logger = createLogger({ level: config.log_level, defaultMeta: { service: "policy" } });
      const running = await startPolicyService(config, { logger, verifyPeer: operatorPeerVerifier(config.credentials_dir, config.operator_trust_domain) });
      await runUntilSignal(logger, () => running.close());
    });

  const audit = program.commands.find((command) => command.name() === "audit") ?? program.command("audit").description("audit service and audit log");
  audit
    .command("serve")
    .description("run the audit service")
    .option("-c, --config <file>", "YAML config file")
    .action(async (options: { config?: string }) => {
      const config = loadAuditConfig(options.config);
      // The audit service writes its keys into data_dir before it creates the log folder.
      mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
      const logger = createLogger({ level: config.log_level, defaultMeta: { service: "audit" } });
      const running = await startAuditService(config, { logger, verifyPeer: operatorPeerVerifier(config.credentials_dir, config.operator_trust_domain) });
      await runUntilSignal(logger, () => running.close());
    });

  program
    .command("relay")
    .description("run a relay")
    .option("-c, --config <file>", "YAML config file")
    .action(async (options: { config?: string }) => {
      const config = loadRelayConfig(options.config);
      const logger = createLogger({ level: config.log_level, defaultMeta: { service: "relay" } });
      const relay = await startRelay(config, { logger });
      await runUntilSignal(logger, () => relay.close());
    });

  program
    .command("hub")
    .description("run the hub")
    .option("-c, --config <file>", "YAML config file")
    .action(async (options: { config?: string }) => {
      const config = loadHubConfig(options.config);
      const logger = createLogger({ level: config.log_level, defaultMeta: { service: "hub" } });
      const hub = await startHub(config, { logger });
      await runUntilSignal(logger, () => hub.close());
    });

  const client = program.command("client").description("the customer-side client");
  client
    .command("enroll")
    .description("enroll with a join token: the key is generated here and only a CSR leaves this machine")
    .requiredOption("--ca <host:port>", "CA service address")
    .requiredOption("--token <token>", "single-use join token from the operator")
    .requiredOption("--dir <dir>", "identity folder to write svid.pem, key.pem and bundles to (mode 0600)")
    .option("--force", "replace the identity already enrolled in --dir")
    .action(async (options: { ca: string; token: string; dir: string; force?: boolean }) => {
      // The token is single use, so the folder is checked before the token is sent to the CA.
      const identityDir = prepareIdentityDir(options.dir, { force: options.force === true });
      const keyPair = generateKeyPair();
      let enrolled: Awaited<ReturnType<typeof enrollWithToken>>;
      try {
        enrolled = await enrollWithToken({ caAddress: options.ca, token: options.token, keyPair });
      } catch (err) {
        identityDir.removeCreated();
        throw err;
      }
      writeCredentialFiles(identityDir.path, {
        svid: enrolled.certChainPem,
        key: privateKeyToPem(keyPair.privateKey),
        operatorBundle: enrolled.operatorBundle.pem,
        tenantBundle: enrolled.tenantBundle.pem,
      });
      process.stdout.write(`enrolled ${enrolled.spiffeId} (serial ${enrolled.serial}, valid until ${enrolled.notAfter.toISOString()}); files in ${identityDir.path}\n`);
    });
  client
    .command("run")
    .description("run the client: dial the relays and serve approved queries")
    .requiredOption("-c, --config <file>", "client YAML config: identity folder, relays and the approved datasets and queries")
    .action(async (options: { config: string }) => {
      const config = loadClientConfig(options.config);
      const logger = createLogger({ defaultMeta: { service: "client" } });
      const handler = createQueryHandler(config, logger);
      const running = startClient(config, { logger, runner: handler, onRenewed: () => handler.signer.reload() });
      await runUntilSignal(logger, async () => {
        await running.stop();
        await handler.close();
      });
    });
  void globals;
}
