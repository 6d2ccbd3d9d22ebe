import { createHash, X509Certificate } from "node:crypto";
import { connect, type DetailedPeerCertificate } from "node:tls";
import { status } from "@grpc/grpc-js";
import { CAServiceClient, type TrustBundle as TrustBundleMessage } from "../../gen/ewii/ca/v1/ca.js";
import { EwiiError, asError } from "../core/errors.js";
import { callUnary, channelOptions, createClientCredentials, dialTarget, IP_TARGET_SERVER_NAME, spiffeIdOfCertificate } from "../core/grpc/index.js";
import { createCsr, derToPem, privateKeyToPem, type KeyPair } from "../core/identity/index.js";
import { CaErrorCode } from "./errors.js";
import { parseJoinToken } from "./tokens.js";

/**
 * Client side of enrollment. On first contact the client knows no CA
 * certificate, only the fingerprint in its join token (as
 * `kubeadm join --discovery-token-ca-cert-hash` works): a TLS probe reads
 * the chain the CA presents, checks that it ends at a root with that
 * SHA-256 fingerprint and that the leaf is the CA service signed by that
 * root, then the gRPC channel trusts only that root.
 */

/** Time allowed for the TLS probe, in milliseconds. */
export const PROBE_TIMEOUT_MS = 10_000;
/** SPIFFE ID path of the CA service in the operator trust domain. */
export const CA_SERVER_PATH = "/service/ca";

export interface PinnedCaRoot {
  rootPem: string;
  operatorTrustDomain: string;
  /** The SPIFFE ID the CA server presents. */
  caSpiffeId: string;
}

function mismatch(message: string): EwiiError {
  return new EwiiError(CaErrorCode.caFingerprintMismatch, message, { status: status.UNAUTHENTICATED });
}

function splitHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[|\]$/g, "");
  return { host, port: Number(address.slice(colon + 1)) };
}

/** Reads the certificate chain a TLS server presents, leaf first, without trusting it. */
function probeServerChain(address: string): Promise<Buffer[]> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve, reject) => {
    // rejectUnauthorized is off because the root is not known yet; the chain is checked against the pinned fingerprint below.
    const socket = connect({ host, port, servername: IP_TARGET_SERVER_NAME, rejectUnauthorized: false, ALPNProtocols: ["h2"], timeout: PROBE_TIMEOUT_MS });
    const fail = (err: unknown): void => {
      socket.destroy();
      reject(new EwiiError(CaErrorCode.caUnreachable, `cannot reach the CA at ${address}: ${asError(err).message}; check the address`, { status: status.UNAVAILABLE, cause: err }));
    };
    socket.once("error", fail);
    socket.once("timeout", () => fail(new Error(`no TLS handshake within ${PROBE_TIMEOUT_MS} ms`)));
    socket.once("secureConnect", () => {
      const chain: Buffer[] = [];
      let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      while (cert !== undefined && cert.raw !== undefined && !chain.some((seen) => seen.equals(cert!.raw))) {
        chain.push(cert.raw);
        cert = cert.issuerCertificate;
      }
      socket.end();
      resolve(chain);
    });
  });
}

/**
 * Connects to the CA once and returns its operator root if, and only if,
 * the root's SHA-256 fingerprint equals `expectedSha256` and the server's
 * leaf is the CA service signed by it.
 */
export async function pinCaRoot(caAddress: string, expectedSha256: string): Promise<PinnedCaRoot> {
  const chain = await probeServerChain(caAddress);
  const root = chain.find((der) => createHash("sha256").update(der).digest("hex") === expectedSha256);
  if (root === undefined || chain.length < 2) {
    throw mismatch(`the CA at ${caAddress} does not present a root with the fingerprint in the join token; the address may point to another CA or an impostor`);
  }
  const rootCert = new X509Certificate(root);
  const leaf = new X509Certificate(chain[0]);
  if (!rootCert.verify(rootCert.publicKey) || !leaf.verify(rootCert.publicKey)) {
    throw mismatch(`the CA at ${caAddress} presents a certificate not signed by the root in the join token`);
  }
  const operatorTrustDomain = spiffeIdOfCertificate(root).replace(/^spiffe:\/\//, "").replace(/\/.*$/, "");
  const caSpiffeId = `spiffe://${operatorTrustDomain}${CA_SERVER_PATH}`;
  if (spiffeIdOfCertificate(chain[0]) !== caSpiffeId) {
    throw mismatch(`the server at ${caAddress} is not the CA service ${caSpiffeId}`);
  }
  return { rootPem: derToPem(root, "CERTIFICATE"), operatorTrustDomain, caSpiffeId };
}

export interface EnrollmentResult {
  spiffeId: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Leaf first, PEM. */
  certChainPem: string;
  privateKeyPem: string;
  tenantBundle: TrustBundleMessage;
  operatorBundle: TrustBundleMessage;
}

/** Enrolls with a join token: authenticates the CA by the token's fingerprint, sends a CSR over `keyPair`, returns the SVID. */
export async function enrollWithToken(options: { caAddress: string; token: string; keyPair: KeyPair }): Promise<EnrollmentResult> {
  const parsed = parseJoinToken(options.token);
  parsed.secret.fill(0);
  const pinned = await pinCaRoot(options.caAddress, parsed.trustAnchorSha256);
  const credentials = createClientCredentials({ trustedCasPem: pinned.rootPem, expectServer: (spiffeId) => spiffeId === pinned.caSpiffeId });
  const client = new CAServiceClient(dialTarget(options.caAddress), credentials, channelOptions(options.caAddress));
  try {
    const response = await callUnary(client.enroll.bind(client), { joinToken: options.token, csrDer: createCsr(options.keyPair) });
    const { svid, tenantBundle, operatorBundle } = response;
    if (svid === undefined || tenantBundle === undefined || operatorBundle === undefined || svid.notBefore === undefined || svid.notAfter === undefined) {
      throw new EwiiError(CaErrorCode.caResponseInvalid, `the CA at ${options.caAddress} sent an incomplete EnrollResponse`, { status: status.INTERNAL });
    }
    return {
      spiffeId: svid.spiffeId,
      serial: svid.serial,
      notBefore: svid.notBefore,
      notAfter: svid.notAfter,
      certChainPem: svid.certChainDer.map((der) => derToPem(der, "CERTIFICATE")).join(""),
      privateKeyPem: privateKeyToPem(options.keyPair.privateKey),
      tenantBundle,
      operatorBundle,
    };
  } finally {
    client.close();
  }
}
