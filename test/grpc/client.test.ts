import assert from "node:assert/strict";
import { Metadata, status } from "@grpc/grpc-js";
import { isEwiiError } from "../../services/core/errors.js";
import {
  IP_TARGET_SERVER_NAME,
  channelOptions,
  createClientCredentials,
  dialTarget,
  spiffeIdOfCertificate,
} from "../../services/core/grpc/index.js";
import type { EnrollResponse } from "../../gen/ewii/ca/v1/ca.js";
import { startFixture, type Fixture } from "./fixture.js";
import { call, createTestCa, issueTestLeaf, rejectionOf } from "./helpers.js";

describe("grpc client", () => {
  describe("dialTarget", () => {
    it("marks IPv4 targets", () => {
      assert.equal(dialTarget("127.0.0.1:7443"), "ipv4:127.0.0.1:7443");
    });

    it("marks IPv6 targets", () => {
      assert.equal(dialTarget("[::1]:7443"), "ipv6:[::1]:7443");
    });

    it("resolves names through dns", () => {
      assert.equal(dialTarget("relay.example:443"), "dns:relay.example:443");
    });

    for (const bad of ["relay.example", "relay.example:0", "relay.example:70000", "::1:443", "a b:1"]) {
      it(`rejects ${JSON.stringify(bad)}`, () => {
        assert.throws(() => dialTarget(bad), (err: unknown) => isEwiiError(err) && err.code === "ERR_GRPC_TARGET_INVALID");
      });
    }
  });

  describe("channelOptions", () => {
    it("overrides the server name for IPs", () => {
      assert.equal(channelOptions(dialTarget("127.0.0.1:1"))["grpc.ssl_target_name_override"], IP_TARGET_SERVER_NAME);
      assert.equal(channelOptions("[::1]:1")["grpc.ssl_target_name_override"], IP_TARGET_SERVER_NAME);
    });

    it("keeps host names", () => {
      assert.equal(channelOptions(dialTarget("relay.example:443"))["grpc.ssl_target_name_override"], undefined);
    });

    it("enables keepalive", () => {
      assert.equal(channelOptions("relay.example:443")["grpc.keepalive_time_ms"], 10_000);
      assert.equal(channelOptions("relay.example:443")["grpc.keepalive_permit_without_calls"], 1);
    });
  });

  describe("spiffeIdOfCertificate", () => {
    it("reads the URI SAN", async () => {
      const ca = await createTestCa("ids.test");
      const leaf = await issueTestLeaf(ca, "/relay/1", { dnsName: "localhost" });
      assert.equal(spiffeIdOfCertificate(leaf.der), "spiffe://ids.test/relay/1");
    });
  });

  describe("server identity", () => {
    let fixture: Fixture;

    before(async () => {
      fixture = await startFixture();
    });

    after(async () => {
      await fixture.close();
    });

    it("connects to the expected server", async () => {
      const client = fixture.caClient(fixture.credentialsFor(undefined));
      const res = await call<EnrollResponse>((callback) => client.enroll({ joinToken: "t", csrDer: Buffer.alloc(0) }, callback));
      assert.equal(res.svid?.spiffeId, "anonymous");
    });

    it("refuses an unexpected server SPIFFE ID", async () => {
      const seen: string[] = [];
      const credentials = createClientCredentials({
        trustedCasPem: fixture.operatorCa.pem,
        expectServer: (spiffeId) => {
          seen.push(spiffeId);
          return spiffeId === "spiffe://operator.test/relay";
        },
      });
      const client = fixture.caClient(credentials);
      const err = await rejectionOf(
        call<EnrollResponse>((callback) =>
          client.enroll({ joinToken: "t", csrDer: Buffer.alloc(0) }, new Metadata(), { deadline: new Date(Date.now() + 10_000) }, callback),
        ),
      );
      assert.equal(err.code, status.UNAVAILABLE);
      assert.ok(seen.includes("spiffe://operator.test/ca"), `expectServer saw ${JSON.stringify(seen)}`);
      assert.match(err.details, /spiffe:\/\/operator\.test\/ca/);
    });
  });
});
