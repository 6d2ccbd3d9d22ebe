import { AuditServiceClient } from "../../gen/ewii/audit/v1/audit.js";
import { auditConfigSchema } from "../../services/audit/config.js";
import { startAuditService } from "../../services/audit/server.js";
import type { RunningAuditService } from "../../services/audit/server.js";
import { TlsMaterialSource, channelOptions, createClientCredentials, dialTarget } from "../../services/core/grpc/index.js";
import type { Logger } from "../../services/core/log.js";
import { silentLogger } from "../../services/core/log.js";
import { createTestCa, issueTestLeaf, testVerifier, tlsMaterial } from "../grpc/helpers.js";
import type { TestCa, TestLeaf } from "../grpc/helpers.js";
import { checkpointKeys, tempDir } from "./helpers.js";
import type { TempDir } from "./helpers.js";

export const AUDIT_TEST_DOMAIN = "operator.test";
const SERVER_ID = `spiffe://${AUDIT_TEST_DOMAIN}/service/audit`;

/**
 * An audit service over mTLS on loopback with its own CA and data folder,
 * and clients that call it as any SPIFFE path of that CA. Call `start` in
 * `beforeEach` and `stop` in `afterEach`.
 */
export class AuditServiceHarness {
  dir!: TempDir;
  ca!: TestCa;
  running!: RunningAuditService;
  private serverLeaf!: TestLeaf;
  private readonly clients: AuditServiceClient[] = [];
  private readonly signingKey = checkpointKeys().privateKey;

  /** `config` adds audit config keys, for example `checkpoint_every_records`. */
  constructor(private readonly config: Record<string, unknown> = {}) {}

  async start(): Promise<void> {
    this.dir = await tempDir();
    this.ca = await createTestCa(AUDIT_TEST_DOMAIN);
    this.serverLeaf = await issueTestLeaf(this.ca, "/service/audit", { dnsName: "localhost" });
    this.running = await this.startService("127.0.0.1:0");
  }

  /** Starts the service on `listen` over the same data folder, for example again after `running.close()`. */
  startService(listen: string, logger: Logger = silentLogger()): Promise<RunningAuditService> {
    const config = auditConfigSchema.parse({
      listen,
      data_dir: this.dir.path,
      credentials_dir: this.dir.path,
      operator_trust_domain: AUDIT_TEST_DOMAIN,
      checkpoint_every_seconds: 0,
      ...this.config,
    });
    return startAuditService(config, { logger, verifyPeer: testVerifier([this.ca]), tls: new TlsMaterialSource(tlsMaterial(this.serverLeaf, [this.ca])), signingKey: this.signingKey, env: {} });
  }

  /** Returns a client of the running service that presents an SVID for `path`. */
  async clientAs(path: string): Promise<AuditServiceClient> {
    const leaf = await issueTestLeaf(this.ca, path);
    const target = dialTarget(this.running.server.address);
    const credentials = createClientCredentials({ tls: tlsMaterial(leaf, [this.ca]), trustedCasPem: this.ca.pem, expectServer: (id) => id === SERVER_ID });
    const client = new AuditServiceClient(target, credentials, channelOptions(target));
    this.clients.push(client);
    return client;
  }

  async stop(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close();
    await this.running.close();
    await this.dir.remove();
  }
}
