import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { errorCodeOf } from "../../services/core/errors.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { activeCaOf, signingCaOf } from "../../services/ca/context.js";
import {
  createCsr,
  derToPem,
  generateKeyPair,
  issueX509Svid,
  privateKeyToPem,
  SpiffeId,
  TrustBundle,
  verifyX509Svid,
} from "../../services/core/identity/index.js";
import { CaFixture, OPERATOR_TD, rejection, type EnrolledWorkload } from "./fixture.js";

describe("ca renew", () => {
  let ca: CaFixture;
  let workload: EnrolledWorkload;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("acme");
    await ca.createTenant("beta");
    workload = await ca.enroll(await ca.token("acme", "/client/site-1"));
  });

  afterEach(async () => {
    await ca.dispose();
  });

  it("returns a certificate for the new key", async () => {
    const client = ca.client(workload.tls);
    const next = generateKeyPair();
    const response = await callUnary(client.renew.bind(client), { csrDer: createCsr(next) });
    const leaf = new X509Certificate(response.svid!.certChainDer[0]);
    assert.equal(response.svid!.spiffeId, workload.spiffeId);
    assert.ok(leaf.publicKey.equals(next.publicKey));
    assert.notEqual(response.svid!.serial, workload.serial);
  });

  it("rejects the current key", async () => {
    const client = ca.client(workload.tls);
    const err = await rejection(callUnary(client.renew.bind(client), { csrDer: createCsr(workload.keyPair) }));
    assert.equal(errorCodeOf(err), "ERR_RENEW_SAME_KEY");
  });

  it("rejects a revoked SVID", async () => {
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { serial: workload.serial }, reason: "test" });
    const client = ca.client(workload.tls);
    const err = await rejection(callUnary(client.renew.bind(client), { csrDer: createCsr(generateKeyPair()) }));
    assert.equal(errorCodeOf(err), "ERR_SVID_REVOKED");
  });

  it("rejects an expired SVID", async () => {
    ca.clock.advance(25 * 3600 * 1000);
    const client = ca.client(workload.tls);
    const err = await rejection(callUnary(client.renew.bind(client), { csrDer: createCsr(generateKeyPair()) }));
    assert.equal(errorCodeOf(err), "ERR_SVID_EXPIRED");
  });

  it("rejects an anonymous caller", async () => {
    const client = ca.client();
    const err = await rejection(callUnary(client.renew.bind(client), { csrDer: createCsr(generateKeyPair()) }));
    assert.equal(errorCodeOf(err), "ERR_PEER_REQUIRED");
  });

  it("accepts a re-enrolled ID after revocation", async () => {
    const admin = ca.admin();
    await callUnary(admin.revoke.bind(admin), { target: { spiffeId: workload.spiffeId }, reason: "site rebuilt" });
    ca.clock.advance(1000);
    const again = await ca.enroll(await ca.token("acme", "/client/site-1"));
    const client = ca.client(again.tls);
    const response = await callUnary(client.renew.bind(client), { csrDer: createCsr(generateKeyPair()) });
    assert.equal(response.svid!.spiffeId, workload.spiffeId);
  });

  it("rejects beta CA signing an acme ID", async () => {
    // Forge what a compromised tenant B could make: its own CA key signing a tenant A SPIFFE ID.
    const context = ca.running!.context;
    const betaCa = signingCaOf(context, activeCaOf(context, `beta.tenants.${OPERATOR_TD}`));
    const forgedKey = generateKeyPair();
    const forged = issueX509Svid({
      ca: betaCa,
      subjectPublicKeySpkiDer: forgedKey.publicKeySpkiDer,
      spiffeId: SpiffeId.parse(workload.spiffeId),
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3600_000),
    });
    const client = ca.client({ certChainPem: derToPem(forged.certDer, "CERTIFICATE"), privateKeyPem: privateKeyToPem(forgedKey.privateKey) });
    const err = await rejection(callUnary(client.renew.bind(client), { csrDer: createCsr(generateKeyPair()) }));
    assert.equal(errorCodeOf(err), "ERR_SVID_UNTRUSTED_CHAIN");
  });

  it("returns bundles that verify the SVID", async () => {
    const client = ca.client(workload.tls);
    const response = await callUnary(client.renew.bind(client), { csrDer: createCsr(generateKeyPair()) });
    const bundle = TrustBundle.fromJwks(response.bundle!.trustDomain, response.bundle!.jwks);
    const verified = verifyX509Svid(response.svid!.certChainDer, { get: (td) => (td === bundle.trustDomain ? bundle : undefined) });
    assert.equal(verified.spiffeId.toString(), workload.spiffeId);
  });
});
