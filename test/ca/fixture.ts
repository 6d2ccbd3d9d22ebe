import { randomBytes } from "node:crypto";
import { EwiiError, errorCodeOf } from "../../services/core/errors.js";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CAServiceClient } from "../../gen/ewii/ca/v1/ca.js";
import { callUnary, channelOptions, createClientCredentials, dialTarget } from "../../services/core/grpc/index.js";
import { createCsr, derToPem, generateKeyPair, privateKeyToPem, type KeyPair } from "../../services/core/identity/index.js";
import { silentLogger } from "../../services/core/log.js";
import { credentialPaths, initOperator, Kek, startCaService, type RunningCaService } from "../../services/ca/index.js";

export const OPERATOR_TD = "operator.test";

/** A clock that tests move forward by hand. */
export class TestClock {
  ms = Date.now();
  now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}

export interface ClientTls {
  certChainPem: string;
  privateKeyPem: string;
}

/** A CA data directory initialized with one admin, one caller and the ca and relay services. */
export class CaFixture {
  readonly dataDir = mkdtempSync(join(tmpdir(), "ewii-ca-test-"));
  readonly kekBytes = randomBytes(32);
  readonly clock = new TestClock();
  running: RunningCaService | undefined;
  private readonly clients: CAServiceClient[] = [];

  constructor() {
    initOperator({
      dataDir: this.dataDir,
      operatorTrustDomain: OPERATOR_TD,
      kek: this.kek(),
      services: ["ca", "relay"],
      admins: ["alice"],
      callers: ["billing"],
      now: this.clock.now,
    });
  }

  kek(): Kek {
    return new Kek(Buffer.from(this.kekBytes));
  }

  async start(svidTtlSeconds = 86_400): Promise<RunningCaService> {
    this.running = await startCaService(
      { listen: "127.0.0.1:0", data_dir: this.dataDir, svid_ttl_seconds: svidTtlSeconds, token_ttl_seconds: 900, log_level: "info" },
      { logger: silentLogger(), kek: this.kek(), now: this.clock.now },
    );
    return this.running;
  }

  async stop(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close();
    await this.running?.close();
    this.running = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  get address(): string {
    if (this.running === undefined) throw new TypeError("CA not started");
    return `127.0.0.1:${this.running.port}`;
  }

  /** Reads the credentials that init wrote for an operator identity. */
  operatorTls(name: string): ClientTls {
    const paths = credentialPaths(this.dataDir, name);
    return { certChainPem: readFileSync(paths.svid, "utf8"), privateKeyPem: readFileSync(paths.key, "utf8") };
  }

  /** Creates a client with the given client certificate, or an anonymous one. */
  client(tls?: ClientTls): CAServiceClient {
    const bundle = readFileSync(credentialPaths(this.dataDir, "alice").bundle, "utf8");
    const credentials = createClientCredentials({ tls, trustedCasPem: bundle, expectServer: (id) => id === `spiffe://${OPERATOR_TD}/service/ca` });
    const client = new CAServiceClient(dialTarget(this.address), credentials, channelOptions(this.address));
    this.clients.push(client);
    return client;
  }

  admin(): CAServiceClient {
    return this.client(this.operatorTls("alice"));
  }

  async createTenant(name: string): Promise<void> {
    const admin = this.admin();
    await callUnary(admin.createTenant.bind(admin), { name });
  }

  async token(tenant: string, path: string, ttlSeconds = 0): Promise<string> {
    const admin = this.admin();
    const response = await callUnary(admin.createJoinToken.bind(admin), { tenant, spiffeIdPath: path, ttlSeconds });
    return response.token;
  }

  /** Enrolls anonymously and returns the SVID with its key. */
  async enroll(token: string, keyPair: KeyPair = generateKeyPair()): Promise<EnrolledWorkload> {
    const anonymous = this.client();
    const response = await callUnary(anonymous.enroll.bind(anonymous), { joinToken: token, csrDer: createCsr(keyPair) });
    const svid = response.svid!;
    return {
      spiffeId: svid.spiffeId,
      serial: svid.serial,
      chainDer: svid.certChainDer,
      keyPair,
      tls: { certChainPem: svid.certChainDer.map((der) => derToPem(der, "CERTIFICATE")).join(""), privateKeyPem: privateKeyToPem(keyPair.privateKey) },
    };
  }
}

export interface EnrolledWorkload {
  spiffeId: string;
  serial: string;
  chainDer: Buffer[];
  keyPair: KeyPair;
  tls: ClientTls;
}

/** Awaits a call that must fail and returns the error. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err: unknown) {
    return err;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** Returns the stable error code of a failed gRPC call or a thrown EwiiError. */
export function codeOf(err: unknown): string | undefined {
  return err instanceof EwiiError ? err.code : errorCodeOf(err);
}
