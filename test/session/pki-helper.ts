import "reflect-metadata";
import { KeyObject, webcrypto, X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { VerifiedPeer } from "../../services/core/session/index.js";

/**
 * Small test PKI: one root CA per trust domain and X509-SVID leaves with a
 * single URI SAN. It is local to the session tests so that they do not
 * depend on the identity module. The verifier checks only what the session
 * layer relies on: issuer signature, validity and SPIFFE ID.
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const HOUR_MS = 60 * 60 * 1000;

export interface TestCa {
  trustDomain: string;
  certificate: x509.X509Certificate;
  keys: CryptoKeyPair;
}

export interface TestSvid {
  spiffeId: string;
  chainDer: Uint8Array[];
  privateKey: KeyObject;
}

async function generateP256(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ECDSA_P256, true, ["sign", "verify"])) as CryptoKeyPair;
}

export async function createTestCa(trustDomain: string): Promise<TestCa> {
  const keys = await generateP256();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=Test CA ${trustDomain}`,
    notBefore: new Date(Date.now() - HOUR_MS),
    notAfter: new Date(Date.now() + 24 * HOUR_MS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${trustDomain}` }]),
    ],
  });
  return { trustDomain, certificate, keys };
}

export async function issueTestSvid(ca: TestCa, path: string): Promise<TestSvid> {
  const keys = await generateP256();
  const spiffeId = `spiffe://${ca.trustDomain}${path}`;
  const leaf = await x509.X509CertificateGenerator.create({
    subject: "CN=svid",
    issuer: ca.certificate.subject,
    notBefore: new Date(Date.now() - HOUR_MS),
    notAfter: new Date(Date.now() + HOUR_MS),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }]),
    ],
  });
  return {
    spiffeId,
    chainDer: [new Uint8Array(leaf.rawData)],
    privateKey: KeyObject.from(keys.privateKey as unknown as webcrypto.CryptoKey),
  };
}

/** Builds a PeerVerifier that trusts the given CAs. */
export function createTestVerifier(cas: TestCa[]): (chainDer: Uint8Array[]) => VerifiedPeer {
  const anchors = cas.map((ca) => ({ trustDomain: ca.trustDomain, certificate: new X509Certificate(Buffer.from(ca.certificate.rawData)) }));
  return (chainDer: Uint8Array[]): VerifiedPeer => {
    const leaf = new X509Certificate(Buffer.from(chainDer[0]));
    const match = /URI:(spiffe:\/\/[^,\s]+)/.exec(leaf.subjectAltName ?? "");
    if (match === null) throw new Error("leaf has no SPIFFE ID");
    const spiffeId = match[1];
    const anchor = anchors.find((candidate) => spiffeId.startsWith(`spiffe://${candidate.trustDomain}/`));
    if (anchor === undefined || !leaf.verify(anchor.certificate.publicKey)) throw new Error("leaf is not signed by the CA of its trust domain");
    const nowMs = Date.now();
    if (nowMs < Date.parse(leaf.validFrom) || nowMs > Date.parse(leaf.validTo)) throw new Error("leaf is outside its validity period");
    return { spiffeId, publicKey: leaf.publicKey, serial: leaf.serialNumber.toLowerCase() };
  };
}
