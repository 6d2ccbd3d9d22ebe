import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { errorCodeOf, isEwiiError } from "../../services/core/errors.js";
import { silentLogger } from "../../services/core/log.js";
import { TlsMaterialSource, splitPemCertificates, watchTlsFiles, type TlsMaterial } from "../../services/core/grpc/index.js";
import type { RenewResponse } from "../../gen/ewii/ca/v1/ca.js";
import { startFixture, type Fixture } from "./fixture.js";
import { call, createTestCa, issueTestLeaf, rejectionOf, serverCertificateSerial, tlsMaterial } from "./helpers.js";

describe("TlsMaterialSource", () => {
  it("rejects a key that does not match", async () => {
    const ca = await createTestCa("a.test");
    const first = tlsMaterial(await issueTestLeaf(ca, "/one"), [ca]);
    const second = tlsMaterial(await issueTestLeaf(ca, "/two"), [ca]);
    const source = new TlsMaterialSource(first);
    assert.throws(
      () => source.update({ ...second, privateKeyPem: first.privateKeyPem }),
      (err: unknown) => isEwiiError(err) && err.code === "ERR_TLS_MATERIAL_INVALID",
    );
    assert.equal(source.current(), first);
  });

  it("rejects material without CA certificates", async () => {
    const ca = await createTestCa("a.test");
    const material = tlsMaterial(await issueTestLeaf(ca, "/one"), [ca]);
    assert.throws(() => new TlsMaterialSource({ ...material, trustedCasPem: "not pem" }), /ERR_TLS_MATERIAL_INVALID|at least one PEM/);
  });

  it("notifies listeners until unsubscribed", async () => {
    const ca = await createTestCa("a.test");
    const first = tlsMaterial(await issueTestLeaf(ca, "/one"), [ca]);
    const second = tlsMaterial(await issueTestLeaf(ca, "/two"), [ca]);
    const source = new TlsMaterialSource(first);
    const seen: TlsMaterial[] = [];
    const unsubscribe = source.onChange((material) => seen.push(material));
    source.update(second);
    unsubscribe();
    source.update(first);
    assert.deepEqual(seen, [second]);
  });

  it("splits PEM bundles joined without newlines", async () => {
    const one = await createTestCa("one.test");
    const two = await createTestCa("two.test");
    assert.equal(splitPemCertificates(one.pem + two.pem).length, 2);
  });
});

describe("watchTlsFiles", () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "ewii-grpc-tls-"));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeAtomically(path: string, text: string): Promise<void> {
    await writeFile(`${path}.tmp`, text);
    await rename(`${path}.tmp`, path);
  }

  it("reloads after atomic renames", async () => {
    const ca = await createTestCa("files.test");
    const first = await issueTestLeaf(ca, "/one");
    const second = await issueTestLeaf(ca, "/two");
    const files = { certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem"), caFile: join(dir, "ca.pem") };
    await writeFile(files.certFile, first.certPem);
    await writeFile(files.keyFile, first.keyPem);
    await writeFile(files.caFile, ca.pem);

    const source = await watchTlsFiles(files, silentLogger());
    try {
      assert.equal(source.current().certChainPem, first.certPem);
      const changed = new Promise<TlsMaterial>((resolve) => source.onChange(resolve));
      await writeAtomically(files.keyFile, second.keyPem);
      await writeAtomically(files.certFile, second.certPem);
      const material = await changed;
      assert.equal(material.certChainPem, second.certPem);
      assert.equal(material.privateKeyPem, second.keyPem);
    } finally {
      source.close();
    }
  });

  it("keeps the old material on a bad file", async () => {
    const ca = await createTestCa("files.test");
    const leaf = await issueTestLeaf(ca, "/one");
    const files = { certFile: join(dir, "bad-cert.pem"), keyFile: join(dir, "bad-key.pem"), caFile: join(dir, "bad-ca.pem") };
    await writeFile(files.certFile, leaf.certPem);
    await writeFile(files.keyFile, leaf.keyPem);
    await writeFile(files.caFile, ca.pem);

    const source = await watchTlsFiles(files, silentLogger());
    try {
      source.close(); // reload() is driven by hand here.
      await writeFile(files.keyFile, "garbage");
      assert.equal(await source.reload(), false);
      assert.equal(source.current().privateKeyPem, leaf.keyPem);
    } finally {
      source.close();
    }
  });
});

describe("certificate rotation", () => {
  let fixture: Fixture;

  before(async () => {
    fixture = await startFixture();
  });

  after(async () => {
    await fixture.close();
  });

  it("serves the new certificate without restart", async () => {
    const client = await fixture.clientMaterial("/admin/alice");
    assert.equal(await serverCertificateSerial(fixture.server.port, client), fixture.serverLeaf.serial);

    const renewed = await issueTestLeaf(fixture.operatorCa, "/ca", { dnsName: "localhost" });
    fixture.tls.update(tlsMaterial(renewed, [fixture.operatorCa, fixture.tenantCa]));
    assert.equal(await serverCertificateSerial(fixture.server.port, client), renewed.serial);

    const caClient = fixture.caClient(fixture.credentialsFor(client));
    const res = await call<RenewResponse>((callback) => caClient.renew({ csrDer: Buffer.alloc(0) }, callback));
    assert.equal(res.svid?.spiffeId, "spiffe://operator.test/admin/alice");
  });

  it("trusts a CA added by update", async () => {
    const newTenantCa = await createTestCa("globex.tenants.operator.test");
    const material = { ...(await fixture.clientMaterial("/client/site-1", newTenantCa)), trustedCasPem: fixture.operatorCa.pem };

    const before = fixture.caClient(fixture.credentialsFor(material));
    const err = await rejectionOf(call<RenewResponse>((callback) => before.renew({ csrDer: Buffer.alloc(0) }, callback)));
    assert.equal(errorCodeOf(err), "ERR_PEER_REQUIRED");

    const current = fixture.tls.current();
    fixture.tls.update({ ...current, trustedCasPem: current.trustedCasPem + newTenantCa.pem });
    // TLS now trusts the new CA, so the peer certificate reaches the
    // verifier, which accepts only the fixture's CAs and rejects it.
    const after = fixture.caClient(fixture.credentialsFor(material));
    const err2 = await rejectionOf(call<RenewResponse>((callback) => after.renew({ csrDer: Buffer.alloc(0) }, callback)));
    assert.equal(err2.code, status.UNAUTHENTICATED);
    assert.equal(errorCodeOf(err2), "ERR_TEST_WRONG_CA");
  });
});

describe("requireClientCert", () => {
  let fixture: Fixture;

  before(async () => {
    fixture = await startFixture({ requireClientCert: true });
  });

  after(async () => {
    await fixture.close();
  });

  it("fails the handshake without a certificate", async () => {
    const client = fixture.caClient(fixture.credentialsFor(undefined));
    const err = await rejectionOf(call((callback) => client.enroll({ joinToken: "t", csrDer: Buffer.alloc(0) }, callback)));
    assert.equal(err.code, status.UNAVAILABLE);
  });

  it("accepts a trusted certificate", async () => {
    const client = fixture.caClient(fixture.credentialsFor(await fixture.clientMaterial("/hub/1")));
    const res = await call<RenewResponse>((callback) => client.renew({ csrDer: Buffer.alloc(0) }, callback));
    assert.equal(res.svid?.spiffeId, "spiffe://operator.test/hub/1");
  });
});
