import "reflect-metadata";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { createCrl, createRootCa, derToPem } from "../../services/core/identity/index.js";

describe("crl", () => {
  const ca = createRootCa({ trustDomain: "acme.example", commonName: "acme CA", notBefore: new Date("2020-01-01T00:00:00Z"), notAfter: new Date("2090-01-01T00:00:00Z") });
  const revokedAt = new Date("2030-01-02T03:04:05Z");
  const crl = createCrl({
    ca,
    revokedSerials: [
      { serial: "1a2b3c", revokedAt },
      { serial: "7fffffffffffffffffffffffffffffff", revokedAt },
    ],
    thisUpdate: new Date("2030-01-02T03:04:05Z"),
    nextUpdate: new Date("2030-01-03T03:04:05Z"),
    crlNumber: 42,
  });
  let dir = "";

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "ewii-crl-"));
    writeFileSync(join(dir, "ca.pem"), derToPem(ca.certDer, "CERTIFICATE"));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function opensslCrl(der: Buffer): string {
    const path = join(dir, "crl.der");
    writeFileSync(path, der);
    return execFileSync("openssl", ["crl", "-inform", "DER", "-in", path, "-CAfile", join(dir, "ca.pem"), "-noout", "-text"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  function opensslVerifyMessage(der: Buffer): string {
    const path = join(dir, "crl.der");
    writeFileSync(path, der);
    const result = execFileSync("sh", ["-c", `openssl crl -inform DER -in ${path} -CAfile ${join(dir, "ca.pem")} -noout 2>&1`], { encoding: "utf8" });
    return result.trim();
  }

  it("openssl verifies signature", () => {
    assert.equal(opensslVerifyMessage(crl), "verify OK");
  });

  it("openssl lists serials", () => {
    const text = opensslCrl(crl);
    assert.ok(text.includes("Serial Number: 1A2B3C"));
    assert.ok(text.includes("Serial Number: 7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"));
  });

  it("openssl shows crl number", () => {
    assert.match(opensslCrl(crl), /X509v3 CRL Number:\s*\n\s*42/);
  });

  it("peculiar parses entries", () => {
    const parsed = new x509.X509Crl(new Uint8Array(crl));
    assert.deepEqual(parsed.entries.map((entry) => entry.serialNumber), ["1a2b3c", "7fffffffffffffffffffffffffffffff"]);
    assert.equal(parsed.entries[0].revocationDate.toISOString(), revokedAt.toISOString());
  });

  it("peculiar verifies signature", async () => {
    assert.equal(await new x509.X509Crl(new Uint8Array(crl)).verify({ publicKey: new x509.X509Certificate(new Uint8Array(ca.certDer)) }), true);
  });

  it("empty list verifies", () => {
    const empty = createCrl({ ca, revokedSerials: [], thisUpdate: new Date("2030-01-01T00:00:00Z"), nextUpdate: new Date("2030-01-02T00:00:00Z"), crlNumber: 1 });
    assert.equal(opensslVerifyMessage(empty), "verify OK");
  });

  it("other ca fails verification", () => {
    const other = createRootCa({ trustDomain: "other.example", commonName: "acme CA", notBefore: new Date("2020-01-01T00:00:00Z"), notAfter: new Date("2090-01-01T00:00:00Z") });
    const forged = createCrl({ ca: other, revokedSerials: [], thisUpdate: new Date("2030-01-01T00:00:00Z"), nextUpdate: new Date("2030-01-02T00:00:00Z"), crlNumber: 1 });
    assert.notEqual(opensslVerifyMessage(forged), "verify OK");
  });

  it("rejects non hex serial", () => {
    assert.throws(
      () => createCrl({ ca, revokedSerials: [{ serial: "xyz", revokedAt }], thisUpdate: revokedAt, nextUpdate: new Date("2031-01-01T00:00:00Z"), crlNumber: 1 }),
      TypeError,
    );
  });
});
