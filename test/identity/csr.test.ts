import "reflect-metadata";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import * as x509 from "@peculiar/x509";
import { createCsr, derToPem, generateKeyPair, parseCsr } from "../../services/core/identity/index.js";
import { caught, errorCode } from "./helpers.js";

/** Offset of the public point inside the SubjectPublicKeyInfo of a P-256 key. */
const POINT_OFFSET_IN_SPKI = 27;

describe("csr", () => {
  const key = generateKeyPair();
  const csr = createCsr(key);
  let dir = "";

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "ewii-csr-"));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("parse returns request key", () => {
    assert.equal(parseCsr(csr).publicKeySpkiDer.equals(key.publicKeySpkiDer), true);
  });

  it("peculiar verifies created csr", async () => {
    assert.equal(await new x509.Pkcs10CertificateRequest(new Uint8Array(csr)).verify(), true);
  });

  it("openssl verifies created csr", () => {
    const path = join(dir, "req.der");
    writeFileSync(path, csr);
    const output = execFileSync("openssl", ["req", "-inform", "DER", "-in", path, "-verify", "-noout"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    assert.equal(output.trim(), "");
  });

  it("accepts openssl csr", () => {
    const keyPath = join(dir, "key.pem");
    const reqPath = join(dir, "openssl-req.der");
    writeFileSync(keyPath, key.privateKey.export({ format: "pem", type: "pkcs8" }));
    execFileSync("openssl", ["req", "-new", "-key", keyPath, "-subj", "/CN=workload", "-outform", "DER", "-out", reqPath]);
    assert.equal(parseCsr(readFileSync(reqPath)).publicKeySpkiDer.equals(key.publicKeySpkiDer), true);
  });

  it("accepts peculiar csr with attributes", async () => {
    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const request = await x509.Pkcs10CertificateRequestGenerator.create({
      name: "CN=workload",
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: "spiffe://evil.example/admin" }])],
    });
    const spki = Buffer.from(await crypto.subtle.exportKey("spki", keys.publicKey));
    assert.equal(parseCsr(Buffer.from(request.rawData)).publicKeySpkiDer.equals(spki), true);
  });

  it("rejects flipped public key byte", () => {
    const tampered = Buffer.from(csr);
    const spkiOffset = csr.indexOf(key.publicKeySpkiDer);
    tampered[spkiOffset + POINT_OFFSET_IN_SPKI + 5] ^= 0x01;
    assert.equal(errorCode(() => parseCsr(tampered)), "ERR_CSR_INVALID");
  });

  it("rejects key swapped for another", () => {
    const other = generateKeyPair();
    const tampered = Buffer.from(csr);
    other.publicKeySpkiDer.copy(tampered, csr.indexOf(key.publicKeySpkiDer));
    assert.equal(errorCode(() => parseCsr(tampered)), "ERR_CSR_BAD_SIGNATURE");
  });

  it("rejects flipped signature byte", () => {
    const tampered = Buffer.from(csr);
    tampered[tampered.length - 3] ^= 0x01;
    assert.equal(errorCode(() => parseCsr(tampered)), "ERR_CSR_BAD_SIGNATURE");
  });

  it("rejects p384 key", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
    const request = createCsr({ privateKey, publicKeySpkiDer: publicKey.export({ type: "spki", format: "der" }) });
    assert.equal(errorCode(() => parseCsr(request)), "ERR_CSR_UNSUPPORTED_KEY");
  });

  it("rejects rsa key", () => {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const keyPath = join(dir, "rsa.pem");
    const reqPath = join(dir, "rsa-req.der");
    writeFileSync(keyPath, privateKey.export({ format: "pem", type: "pkcs8" }));
    execFileSync("openssl", ["req", "-new", "-key", keyPath, "-subj", "/CN=workload", "-outform", "DER", "-out", reqPath]);
    assert.equal(errorCode(() => parseCsr(readFileSync(reqPath))), "ERR_CSR_UNSUPPORTED_KEY");
  });

  it("rejects empty input", () => {
    assert.equal(errorCode(() => parseCsr(Buffer.alloc(0))), "ERR_CSR_INVALID");
  });

  it("rejects trailing bytes", () => {
    assert.equal(errorCode(() => parseCsr(Buffer.concat([csr, Buffer.from([0])]))), "ERR_CSR_INVALID");
  });

  it("rejects truncated input", () => {
    assert.equal(errorCode(() => parseCsr(csr.subarray(0, csr.length - 1))), "ERR_CSR_INVALID");
  });

  it("rejects pem text", () => {
    assert.equal(errorCode(() => parseCsr(Buffer.from(derToPem(csr, "CERTIFICATE REQUEST")))), "ERR_CSR_INVALID");
  });

  it("rejects oversized input", () => {
    assert.equal(errorCode(() => parseCsr(Buffer.alloc(64 * 1024, 0x30))), "ERR_CSR_INVALID");
  });

  it("rejects every truncation", () => {
    const codes = new Set<string>();
    for (let length = 0; length < csr.length; length++) codes.add(errorCode(() => parseCsr(csr.subarray(0, length))));
    assert.deepEqual([...codes], ["ERR_CSR_INVALID"]);
  });

  it("error status invalid argument", () => {
    assert.equal(caught(() => parseCsr(Buffer.alloc(0))).status, status.INVALID_ARGUMENT);
  });
});
