import "reflect-metadata";
import { X509Certificate as NodeX509Certificate, webcrypto } from "node:crypto";
import { connect } from "node:tls";
import * as x509 from "@peculiar/x509";
import { credentials, status } from "@grpc/grpc-js";
import type { ChannelCredentials, ServiceError } from "@grpc/grpc-js";
import { EwiiError } from "../../services/core/errors.js";
import type { PeerIdentity, PeerVerifier, TlsMaterial } from "../../services/core/grpc/index.js";

x509.cryptoProvider.set(webcrypto as Crypto);

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface TestCa {
  trustDomain: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  pem: string;
}

export interface TestLeaf {
  spiffeId: string;
  serial: string;
  certPem: string;
  keyPem: string;
  der: Buffer;
}

// Six hex digits with the top bit clear keep every serial a positive,
// minimally encoded DER integer.
let nextSerial = 0x100000;

function freshSerial(): string {
  nextSerial += 1;
  return nextSerial.toString(16);
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(pkcs8, "PRIVATE KEY");
}

/** Creates a self-signed ECDSA P-256 CA whose URI SAN is the trust domain's SPIFFE ID. */
export async function createTestCa(trustDomain: string): Promise<TestCa> {
  const keys = await generateKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: freshSerial(),
    name: `CN=${trustDomain} test CA`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${trustDomain}` }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { trustDomain, cert, keys, pem: cert.toString("pem") };
}

/**
 * Issues an X509-SVID leaf for `spiffe://<trust domain><path>`. `dnsName`
 * adds a DNS SAN, which clients that check host names (Python grpcio) need.
 */
export async function issueTestLeaf(ca: TestCa, path: string, options: { dnsName?: string } = {}): Promise<TestLeaf> {
  const keys = await generateKeys();
  const spiffeId = `spiffe://${ca.trustDomain}${path}`;
  const serial = freshSerial();
  const now = Date.now();
  const names: x509.JsonGeneralName[] = [{ type: "url", value: spiffeId }];
  if (options.dnsName !== undefined) names.push({ type: "dns", value: options.dnsName });

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${path}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + DAY_MS),
    signingKey: ca.keys.privateKey,
    publicKey: keys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names, true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  return { spiffeId, serial, certPem: cert.toString("pem"), keyPem: await privateKeyPem(keys.privateKey), der: Buffer.from(cert.rawData) };
}

export function tlsMaterial(leaf: TestLeaf, trusted: TestCa[]): TlsMaterial {
  return { certChainPem: leaf.certPem, privateKeyPem: leaf.keyPem, trustedCasPem: trusted.map((ca) => ca.pem).join("") };
}

/** Path prefix whose SPIFFE IDs the test verifier rejects, standing in for a revoked identity. */
export const REJECTED_PATH_PREFIX = "/rejected/";
export const TEST_REJECT_CODE = "ERR_TEST_PEER_REJECTED";

/**
 * A small PeerVerifier: the leaf must be issued by the CA of the trust domain
 * in its URI SAN, and paths under REJECTED_PATH_PREFIX are rejected.
 */
export function testVerifier(cas: TestCa[]): PeerVerifier {
  return (leafDer: Buffer): PeerIdentity => {
    const leaf = new x509.X509Certificate(new Uint8Array(leafDer));
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
    const uri = san?.names.items.find((name) => name.type === "url")?.value;
    if (uri === undefined) throw new EwiiError("ERR_TEST_NO_SPIFFE_ID", "leaf has no URI SAN", { status: status.UNAUTHENTICATED });
    const url = new URL(uri);
    const ca = cas.find((candidate) => candidate.trustDomain === url.host);
    const nodeLeaf = new NodeX509Certificate(leafDer);
    if (ca === undefined || !nodeLeaf.checkIssued(new NodeX509Certificate(ca.pem))) {
      throw new EwiiError("ERR_TEST_WRONG_CA", `leaf for ${uri} is not issued by its trust domain's CA`, { status: status.UNAUTHENTICATED });
    }
    if (url.pathname.startsWith(REJECTED_PATH_PREFIX)) {
      throw new EwiiError(TEST_REJECT_CODE, `peer ${uri} is rejected by the test verifier`, { status: status.PERMISSION_DENIED });
    }
    return {
      spiffeId: uri,
      trustDomain: url.host,
      path: url.pathname,
      serial: leaf.serialNumber.toLowerCase(),
      notAfter: leaf.notAfter,
      leafDer,
    };
  };
}

/** Reads the serial of the certificate a server presents on a fresh TLS connection. */
export function serverCertificateSerial(port: number, client: TlsMaterial): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      servername: "ewii-server.invalid",
      ALPNProtocols: ["h2"],
      ca: client.trustedCasPem,
      cert: client.certChainPem,
      key: client.privateKeyPem,
      checkServerIdentity: () => undefined,
    });
    socket.once("secureConnect", () => {
      const serial = socket.getPeerCertificate().serialNumber.toLowerCase();
      socket.destroy();
      resolve(serial);
    });
    socket.once("error", reject);
  });
}

/** Server-authenticated credentials without the SPIFFE check, for negative tests. */
export function anonymousCredentials(trusted: TestCa[]): ChannelCredentials {
  return credentials.createSsl(Buffer.from(trusted.map((ca) => ca.pem).join("")), null, null, { checkServerIdentity: () => undefined });
}

/** Turns a callback-style unary client call into a promise. */
export function call<Res>(invoke: (callback: (err: ServiceError | null, res?: Res) => void) => void): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((err, res) => {
      if (err !== null) reject(err);
      else resolve(res as Res);
    });
  });
}

/** Awaits a promise that must reject and returns its error. */
export async function rejectionOf(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err: unknown) {
    return err as ServiceError;
  }
  throw new Error("expected the call to fail, but it succeeded");
}
