import "reflect-metadata";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import {
  BundleSet,
  SpiffeId,
  TrustBundle,
  createRootCa,
  derToPem,
  generateKeyPair,
  issueX509Svid,
  serialHex,
  verifyX509Svid,
} from "../../services/core/identity/index.js";
import { errorCode } from "./helpers.js";

const NOT_BEFORE = new Date("2020-01-01T00:00:00Z");
const NOT_AFTER = new Date("2090-01-01T00:00:00Z");
const NOW = new Date("2030-06-01T00:00:00Z");

describe("issuer", () => {
  const ca = createRootCa({ trustDomain: "acme.example", commonName: "acme CA", notBefore: NOT_BEFORE, notAfter: NOT_AFTER });
  const key = generateKeyPair();
  const id = SpiffeId.parse("spiffe://acme.example/client/site-1");
  const issued = issueX509Svid({ ca, subjectPublicKeySpkiDer: key.publicKeySpkiDer, spiffeId: id, notBefore: NOT_BEFORE, notAfter: new Date("2031-01-01T00:00:00Z") });
  const leaf = new X509Certificate(issued.certDer);
  const parsed = new x509.X509Certificate(new Uint8Array(issued.certDer));
  let dir = "";

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "ewii-issuer-"));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function opensslVerify(caDer: Buffer, chain: Buffer[]): string {
    const caPath = join(dir, "ca.pem");
    const leafPath = join(dir, "leaf.pem");
    writeFileSync(caPath, derToPem(caDer, "CERTIFICATE"));
    writeFileSync(leafPath, chain.map((der) => derToPem(der, "CERTIFICATE")).join(""));
    return execFileSync("openssl", ["verify", "-attime", String(NOW.getTime() / 1000), "-CAfile", caPath, leafPath], { encoding: "utf8" }).trim();
  }

  it("openssl verifies leaf", () => {
    assert.equal(opensslVerify(ca.certDer, [issued.certDer]), `${join(dir, "leaf.pem")}: OK`);
  });

  it("openssl verifies root", () => {
    assert.equal(opensslVerify(ca.certDer, [ca.certDer]), `${join(dir, "leaf.pem")}: OK`);
  });

  it("verifyX509Svid accepts leaf", () => {
    const bundles = new BundleSet();
    bundles.set(new TrustBundle("acme.example", [ca.cert], 1));
    assert.equal(verifyX509Svid([issued.certDer], bundles, { now: NOW }).spiffeId.toString(), id.toString());
  });

  it("leaf has one uri san", () => {
    const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
    assert.deepEqual(san?.names.items.map((name) => [name.type, name.value]), [["url", id.toString()]]);
  });

  it("leaf san critical with empty subject", () => {
    assert.equal(parsed.subject, "");
    assert.equal(parsed.getExtension(x509.SubjectAlternativeNameExtension)?.critical, true);
  });

  it("leaf basic constraints", () => {
    const extension = parsed.getExtension(x509.BasicConstraintsExtension);
    assert.equal(extension?.ca, false);
    assert.equal(extension?.critical, true);
  });

  it("leaf key usage", () => {
    const extension = parsed.getExtension(x509.KeyUsagesExtension);
    assert.equal(extension?.usages, x509.KeyUsageFlags.digitalSignature);
    assert.equal(extension?.critical, true);
  });

  it("leaf extended key usage", () => {
    assert.deepEqual([...(parsed.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])], ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  });

  it("leaf authority key id matches ca", () => {
    const caParsed = new x509.X509Certificate(new Uint8Array(ca.certDer));
    assert.equal(parsed.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, caParsed.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  });

  it("leaf public key is request key", () => {
    assert.equal(leaf.publicKey.equals(key.publicKey), true);
  });

  it("leaf issued by ca", () => {
    assert.equal(leaf.checkIssued(ca.cert), true);
    assert.equal(leaf.verify(ca.cert.publicKey), true);
  });

  it("serial matches certificate", () => {
    assert.equal(issued.serial, serialHex(leaf));
  });

  it("serial is positive 16 bytes at most", () => {
    assert.match(issued.serial, /^[1-7]?[0-9a-f]{1,31}$/);
  });

  it("serial from option", () => {
    const withSerial = issueX509Svid({ ca, subjectPublicKeySpkiDer: key.publicKeySpkiDer, spiffeId: id, notBefore: NOT_BEFORE, notAfter: NOT_AFTER, serial: Buffer.from("00ff01", "hex") });
    assert.equal(withSerial.serial, "ff01");
    assert.equal(serialHex(new X509Certificate(withSerial.certDer)), "ff01");
  });

  it("serials differ", () => {
    const other = issueX509Svid({ ca, subjectPublicKeySpkiDer: key.publicKeySpkiDer, spiffeId: id, notBefore: NOT_BEFORE, notAfter: NOT_AFTER });
    assert.notEqual(other.serial, issued.serial);
  });

  it("notAfter clamped to ca", () => {
    const late = issueX509Svid({ ca, subjectPublicKeySpkiDer: key.publicKeySpkiDer, spiffeId: id, notBefore: NOT_BEFORE, notAfter: new Date("2095-01-01T00:00:00Z") });
    assert.equal(new x509.X509Certificate(new Uint8Array(late.certDer)).notAfter.toISOString(), NOT_AFTER.toISOString());
  });

  it("validity encoded from 2050 as generalized time", () => {
    const late = issueX509Svid({ ca, subjectPublicKeySpkiDer: key.publicKeySpkiDer, spiffeId: id, notBefore: new Date("2060-05-06T07:08:09Z"), notAfter: new Date("2061-01-01T00:00:00Z") });
    assert.equal(new x509.X509Certificate(new Uint8Array(late.certDer)).notBefore.toISOString(), "2060-05-06T07:08:09.000Z");
  });

  it("rejects root path id", () => {
    assert.throws(() => issueX509Svid({ ca, subjectPublicKeySpkiDer: key.publicKeySpkiDer, spiffeId: SpiffeId.parse("spiffe://acme.example"), notBefore: NOT_BEFORE, notAfter: NOT_AFTER }), TypeError);
  });

  it("rejects non p256 key", () => {
    const rsa = Buffer.from("30", "hex");
    assert.throws(() => issueX509Svid({ ca, subjectPublicKeySpkiDer: rsa, spiffeId: id, notBefore: NOT_BEFORE, notAfter: NOT_AFTER }), TypeError);
  });

  it("rejects inverted validity", () => {
    assert.throws(() => issueX509Svid({ ca, subjectPublicKeySpkiDer: key.publicKeySpkiDer, spiffeId: id, notBefore: NOT_AFTER, notAfter: NOT_BEFORE }), TypeError);
  });

  it("root ca extensions", () => {
    const root = new x509.X509Certificate(new Uint8Array(ca.certDer));
    assert.equal(root.getExtension(x509.BasicConstraintsExtension)?.ca, true);
    assert.equal(root.getExtension(x509.BasicConstraintsExtension)?.critical, true);
    assert.equal(root.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.equal(root.getExtension(x509.KeyUsagesExtension)?.critical, true);
  });

  it("root ca uri san is trust domain", () => {
    const root = new x509.X509Certificate(new Uint8Array(ca.certDer));
    assert.deepEqual(root.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((name) => name.value), ["spiffe://acme.example"]);
  });

  it("root ca self signed", () => {
    assert.equal(ca.cert.verify(ca.cert.publicKey), true);
    assert.equal(ca.cert.subject, "CN=acme CA");
  });

  it("root ca rejects bad trust domain", () => {
    assert.equal(errorCode(() => createRootCa({ trustDomain: "Acme", commonName: "x", notBefore: NOT_BEFORE, notAfter: NOT_AFTER })), "ERR_SPIFFE_ID_INVALID");
  });

  it("tenant b ca cannot issue for tenant a", () => {
    const caB = createRootCa({ trustDomain: "b.example", commonName: "b CA", notBefore: NOT_BEFORE, notAfter: NOT_AFTER });
    const forged = issueX509Svid({ ca: caB, subjectPublicKeySpkiDer: key.publicKeySpkiDer, spiffeId: id, notBefore: NOT_BEFORE, notAfter: NOT_AFTER });
    const bundles = new BundleSet();
    bundles.set(new TrustBundle("acme.example", [ca.cert], 1));
    bundles.set(new TrustBundle("b.example", [caB.cert], 1));
    assert.equal(errorCode(() => verifyX509Svid([forged.certDer], bundles, { now: NOW })), "ERR_SVID_UNTRUSTED_CHAIN");
  });
});
