import { status } from "@grpc/grpc-js";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { AuditServiceService, type TailRequest, type TailResponse } from "../../gen/ewii/audit/v1/audit.js";
import {
  CAServiceClient,
  CAServiceService,
  type EnrollRequest,
  type EnrollResponse,
  type GetTrustBundleRequest,
  type GetTrustBundleResponse,
  type ListTenantsRequest,
  type ListTenantsResponse,
  type RenewRequest,
  type RenewResponse,
} from "../../gen/ewii/ca/v1/ca.js";
import { EwiiError } from "../../services/core/errors.js";
import { silentLogger } from "../../services/core/log.js";
import {
  TlsMaterialSource,
  channelOptions,
  createClientCredentials,
  dialTarget,
  startGrpcServer,
  type RpcEdge,
  type RunningServer,
  type TlsMaterial,
} from "../../services/core/grpc/index.js";
import { createTestCa, issueTestLeaf, testVerifier, tlsMaterial, type TestCa, type TestLeaf } from "./helpers.js";

export const OPERATOR_DOMAIN = "operator.test";
export const TENANT_DOMAIN = "acme.tenants.operator.test";
export const SERVER_PATH = "/ca";
/** Message of the plain Error the test CA throws; it must never reach a client. */
export const INTERNAL_DETAIL = "sqlite file /var/lib/ewii/ca.db is locked";
export const TEST_NOT_FOUND_CODE = "ERR_TEST_TENANT_NOT_FOUND";

export interface TailProbe {
  /** Resolves once a Tail handler's signal is aborted, with the abort reason. */
  aborted: Promise<unknown>;
}

export interface Fixture {
  operatorCa: TestCa;
  tenantCa: TestCa;
  serverLeaf: TestLeaf;
  tls: TlsMaterialSource;
  server: RunningServer;
  tail: TailProbe;
  /** mTLS material of an operator workload client. */
  clientMaterial(path: string, ca?: TestCa): Promise<TlsMaterial>;
  /** A CA client over the given credentials. */
  caClient(channelCredentials: ChannelCredentials): CAServiceClient;
  /** Credentials that trust the operator CA and expect the test server's SPIFFE ID. */
  credentialsFor(material: TlsMaterial | undefined): ChannelCredentials;
  close(): Promise<void>;
}

function caImplementation(rpc: RpcEdge) {
  return {
    enroll: rpc.unary<EnrollRequest, EnrollResponse>(
      async (_req, ctx) => ({ svid: { spiffeId: ctx.peer?.spiffeId ?? "anonymous", certChainDer: [], serial: "" } }),
      { allowAnonymous: true },
    ),
    renew: rpc.unary<RenewRequest, RenewResponse>(async (_req, ctx) => ({
      svid: { spiffeId: ctx.peer?.spiffeId ?? "", certChainDer: [], serial: ctx.peer?.serial ?? "" },
    })),
    getTrustBundle: rpc.unary<GetTrustBundleRequest, GetTrustBundleResponse>(async () => {
      throw new Error(INTERNAL_DETAIL);
    }),
    listTenants: rpc.unary<ListTenantsRequest, ListTenantsResponse>(async () => {
      throw new EwiiError(TEST_NOT_FOUND_CODE, "tenant acme not found; create it first", { status: status.NOT_FOUND });
    }),
  };
}

function auditImplementation(rpc: RpcEdge, onAborted: (reason: unknown) => void) {
  return {
    tail: rpc.serverStream<TailRequest, TailResponse>(async (_req, ctx) => {
      await ctx.write({});
      await new Promise<void>((resolve) => {
        ctx.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      onAborted(ctx.signal.reason);
    }),
  };
}

/** Starts a CA and audit test server on 127.0.0.1 with mTLS optional, so anonymous tests work. */
export async function startFixture(options: { requireClientCert?: boolean } = {}): Promise<Fixture> {
  const operatorCa = await createTestCa(OPERATOR_DOMAIN);
  const tenantCa = await createTestCa(TENANT_DOMAIN);
  const serverLeaf = await issueTestLeaf(operatorCa, SERVER_PATH, { dnsName: "localhost" });
  const tls = new TlsMaterialSource(tlsMaterial(serverLeaf, [operatorCa, tenantCa]));

  let reportAbort: (reason: unknown) => void = () => undefined;
  const aborted = new Promise<unknown>((resolve) => {
    reportAbort = resolve;
  });

  const server = await startGrpcServer({
    name: "grpc-test",
    listen: "127.0.0.1:0",
    logger: silentLogger(),
    tls,
    requireClientCert: options.requireClientCert ?? false,
    verifyPeer: testVerifier([operatorCa, tenantCa]),
    services: [
      { definition: CAServiceService, implementation: caImplementation, healthName: "ewii.ca.v1.CAService" },
      {
        definition: AuditServiceService,
        implementation: (rpc) => auditImplementation(rpc, reportAbort),
        healthName: "ewii.audit.v1.AuditService",
      },
    ],
  });

  const clients: CAServiceClient[] = [];
  const expectedServer = `spiffe://${OPERATOR_DOMAIN}${SERVER_PATH}`;

  return {
    operatorCa,
    tenantCa,
    serverLeaf,
    tls,
    server,
    tail: { aborted },
    clientMaterial: async (path, ca = operatorCa) => tlsMaterial(await issueTestLeaf(ca, path), [operatorCa]),
    caClient: (channelCredentials) => {
      const target = dialTarget(server.address);
      const client = new CAServiceClient(target, channelCredentials, channelOptions(target));
      clients.push(client);
      return client;
    },
    credentialsFor: (material) =>
      createClientCredentials({
        tls: material,
        trustedCasPem: operatorCa.pem,
        expectServer: (spiffeId) => spiffeId === expectedServer,
      }),
    close: async () => {
      for (const client of clients) client.close();
      await server.close(1_000);
    },
  };
}
