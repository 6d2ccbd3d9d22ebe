import assert from "node:assert/strict";
import { Metadata, makeGenericClientConstructor, status } from "@grpc/grpc-js";
import type { Client, ServiceDefinition, ServiceError } from "@grpc/grpc-js";
import { service as healthServiceDefinition } from "grpc-health-check";
import { ERROR_CODE_METADATA_KEY, errorCodeOf } from "../../services/core/errors.js";
import { channelOptions, dialTarget } from "../../services/core/grpc/index.js";
import type { EnrollResponse, RenewResponse } from "../../gen/ewii/ca/v1/ca.js";
import { AuditServiceClient, type TailResponse } from "../../gen/ewii/audit/v1/audit.js";
import { INTERNAL_DETAIL, TEST_NOT_FOUND_CODE, startFixture, type Fixture } from "./fixture.js";
import { REJECTED_PATH_PREFIX, TEST_REJECT_CODE, anonymousCredentials, call, createTestCa, rejectionOf } from "./helpers.js";

const HealthClient = makeGenericClientConstructor(healthServiceDefinition as unknown as ServiceDefinition, "grpc.health.v1.Health");

interface HealthClientMethods extends Client {
  check(req: { service: string }, callback: (err: ServiceError | null, res?: { status: string }) => void): void;
}

function healthStatus(fixture: Fixture, credentials: ReturnType<Fixture["credentialsFor"]>, service: string): Promise<string> {
  const target = dialTarget(fixture.server.address);
  const client = new HealthClient(target, credentials, channelOptions(target)) as unknown as HealthClientMethods;
  return call<{ status: string }>((callback) => client.check({ service }, callback))
    .then((res) => res.status)
    .finally(() => client.close());
}

describe("grpc server", () => {
  let fixture: Fixture;

  before(async () => {
    fixture = await startFixture();
  });

  after(async () => {
    await fixture.close();
  });

  describe("health", () => {
    it("reports SERVING", async () => {
      const credentials = fixture.credentialsFor(await fixture.clientMaterial("/admin/alice"));
      assert.equal(await healthStatus(fixture, credentials, ""), "SERVING");
      assert.equal(await healthStatus(fixture, credentials, "ewii.ca.v1.CAService"), "SERVING");
    });

    it("reports NOT_SERVING after setServing(false)", async () => {
      const credentials = fixture.credentialsFor(await fixture.clientMaterial("/admin/alice"));
      fixture.server.setServing(false, "ewii.ca.v1.CAService");
      try {
        assert.equal(await healthStatus(fixture, credentials, "ewii.ca.v1.CAService"), "NOT_SERVING");
        assert.equal(await healthStatus(fixture, credentials, "ewii.audit.v1.AuditService"), "SERVING");
        fixture.server.setServing(false);
        assert.equal(await healthStatus(fixture, credentials, ""), "NOT_SERVING");
        assert.equal(await healthStatus(fixture, credentials, "ewii.audit.v1.AuditService"), "NOT_SERVING");
      } finally {
        fixture.server.setServing(true);
      }
      assert.equal(await healthStatus(fixture, credentials, ""), "SERVING");
    });

    it("rejects unknown service names in setServing", () => {
      assert.throws(() => fixture.server.setServing(false, "ewii.nope.v1.Nope"), TypeError);
    });

    it("rejects callers without a certificate", async () => {
      const err = await rejectionOf(healthStatus(fixture, anonymousCredentials([fixture.operatorCa]), ""));
      assert.equal(err.code, status.UNAUTHENTICATED);
      assert.equal(errorCodeOf(err), "ERR_PEER_REQUIRED");
    });
  });

  describe("peer authentication", () => {
    it("rejects anonymous callers of peer methods", async () => {
      const client = fixture.caClient(anonymousCredentials([fixture.operatorCa]));
      const err = await rejectionOf(call<RenewResponse>((callback) => client.renew({ csrDer: Buffer.alloc(0) }, callback)));
      assert.equal(err.code, status.UNAUTHENTICATED);
      assert.equal(errorCodeOf(err), "ERR_PEER_REQUIRED");
    });

    it("accepts anonymous callers of allowAnonymous methods", async () => {
      const client = fixture.caClient(fixture.credentialsFor(undefined));
      const res = await call<EnrollResponse>((callback) => client.enroll({ joinToken: "t", csrDer: Buffer.alloc(0) }, callback));
      assert.equal(res.svid?.spiffeId, "anonymous");
    });

    it("passes the verified peer to handlers", async () => {
      const material = await fixture.clientMaterial("/hub/1");
      const client = fixture.caClient(fixture.credentialsFor(material));
      const res = await call<RenewResponse>((callback) => client.renew({ csrDer: Buffer.alloc(0) }, callback));
      assert.equal(res.svid?.spiffeId, "spiffe://operator.test/hub/1");
      assert.match(res.svid?.serial ?? "", /^[0-9a-f]+$/);
    });

    it("returns the verifier's code as UNAUTHENTICATED", async () => {
      const material = await fixture.clientMaterial(`${REJECTED_PATH_PREFIX}mallory`);
      const client = fixture.caClient(fixture.credentialsFor(material));
      const err = await rejectionOf(call<RenewResponse>((callback) => client.renew({ csrDer: Buffer.alloc(0) }, callback)));
      assert.equal(err.code, status.UNAUTHENTICATED);
      assert.equal(errorCodeOf(err), TEST_REJECT_CODE);
    });

    it("rejects a failing certificate on allowAnonymous methods", async () => {
      const material = await fixture.clientMaterial(`${REJECTED_PATH_PREFIX}mallory`);
      const client = fixture.caClient(fixture.credentialsFor(material));
      const err = await rejectionOf(call<EnrollResponse>((callback) => client.enroll({ joinToken: "t", csrDer: Buffer.alloc(0) }, callback)));
      assert.equal(err.code, status.UNAUTHENTICATED);
      assert.equal(errorCodeOf(err), TEST_REJECT_CODE);
    });

    it("treats an untrusted certificate as anonymous", async () => {
      const strangerCa = await createTestCa("stranger.test");
      const material = { ...(await fixture.clientMaterial("/x", strangerCa)), trustedCasPem: fixture.operatorCa.pem };
      const client = fixture.caClient(fixture.credentialsFor(material));
      const err = await rejectionOf(call<RenewResponse>((callback) => client.renew({ csrDer: Buffer.alloc(0) }, callback)));
      assert.equal(err.code, status.UNAUTHENTICATED);
      assert.equal(errorCodeOf(err), "ERR_PEER_REQUIRED");
    });
  });

  describe("error mapping", () => {
    it("hides a plain Error behind INTERNAL", async () => {
      const client = fixture.caClient(fixture.credentialsFor(await fixture.clientMaterial("/hub/1")));
      const err = await rejectionOf(call((callback) => client.getTrustBundle({ trustDomain: "operator.test" }, callback)));
      assert.equal(err.code, status.INTERNAL);
      assert.ok(!err.details.includes(INTERNAL_DETAIL), `details leak the cause: ${err.details}`);
      assert.ok(!err.message.includes("/var/lib"), `message leaks the cause: ${err.message}`);
      assert.deepEqual(err.metadata.get(ERROR_CODE_METADATA_KEY), ["ERR_INTERNAL"]);
    });

    it("keeps the code and status of an EwiiError", async () => {
      const client = fixture.caClient(fixture.credentialsFor(await fixture.clientMaterial("/admin/alice")));
      const err = await rejectionOf(call((callback) => client.listTenants({}, callback)));
      assert.equal(err.code, status.NOT_FOUND);
      assert.equal(errorCodeOf(err), TEST_NOT_FOUND_CODE);
      assert.match(err.details, /tenant acme not found/);
    });
  });

  describe("server stream", () => {
    it("aborts the handler signal on client cancel", async () => {
      const material = await fixture.clientMaterial("/admin/alice");
      const target = dialTarget(fixture.server.address);
      const client = new AuditServiceClient(target, fixture.credentialsFor(material), channelOptions(target));
      try {
        const stream = client.tail({ afterSequence: 0n }, new Metadata());
        stream.on("error", () => undefined); // CANCELLED is expected after cancel().
        await new Promise<TailResponse>((resolve) => stream.once("data", resolve));
        stream.cancel();
        const reason = await fixture.tail.aborted;
        assert.equal((reason as { code?: string }).code, "ERR_RPC_CANCELLED");
      } finally {
        client.close();
      }
    });
  });
});
