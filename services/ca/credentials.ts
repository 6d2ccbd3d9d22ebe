import { join } from "node:path";
import { derToPem, generateKeyPair, privateKeyToPem, SpiffeId } from "../core/identity/index.js";
import { writeCredentialFiles as writeWorkloadCredentialFiles } from "../core/workload/credentials.js";
import type { CaContext } from "./context.js";
import { bundleOf } from "./bundles.js";
import { issueSvid } from "./issuance.js";
import type { IssuedBy } from "./store.js";

/**
 * Operator credentials (SVID, key and operator bundle) issued straight from
 * the store, without gRPC: at initialization and by `ewii dev` to renew
 * service SVIDs. Files are written with mode 0600 in 0700 directories.
 */

/** Kinds of operator identity and the first segment of their SPIFFE ID path. */
export type OperatorIdentityKind = "service" | "admin" | "caller";

export const CREDENTIAL_FILE_MODE = 0o600;
export const CREDENTIAL_DIR_MODE = 0o700;

export interface OperatorCredential {
  spiffeId: string;
  serial: string;
  notAfter: Date;
  /** Leaf first, stopping before the operator root. */
  certChainPem: string;
  privateKeyPem: string;
  /** The operator root CA certificate(s), PEM. */
  bundlePem: string;
}

export interface CredentialPaths {
  dir: string;
  svid: string;
  key: string;
  bundle: string;
}

/** Paths of the credential files of operator identity `name`: `<dataDir>/credentials/<name>/`. */
export function credentialPaths(dataDir: string, name: string): CredentialPaths {
  const dir = join(dataDir, "credentials", name);
  return { dir, svid: join(dir, "svid.pem"), key: join(dir, "key.pem"), bundle: join(dir, "bundle.pem") };
}

/** Returns the SPIFFE ID of an operator identity, for example `spiffe://<td>/service/hub`. */
export function operatorSpiffeId(operatorTrustDomain: string, kind: OperatorIdentityKind, name: string): SpiffeId {
  return SpiffeId.fromParts(operatorTrustDomain, `/${kind}/${name}`);
}

/** Issues an SVID over a fresh key for an operator identity. */
export function issueOperatorCredential(
  ctx: CaContext,
  request: { kind: OperatorIdentityKind; name: string; issuedBy?: IssuedBy; ttlMs?: number },
): OperatorCredential {
  const spiffeId = operatorSpiffeId(ctx.operatorTrustDomain, request.kind, request.name);
  const keyPair = generateKeyPair();
  const issued = ctx.store.transaction(() =>
    issueSvid(ctx, { spiffeId, publicKeySpkiDer: keyPair.publicKeySpkiDer, issuedBy: request.issuedBy ?? "init", tenant: null, ttlMs: request.ttlMs }),
  );
  return {
    spiffeId: issued.record.spiffeId,
    serial: issued.record.serial,
    notAfter: issued.record.notAfter,
    certChainPem: issued.certChainDer.map((der) => derToPem(der, "CERTIFICATE")).join(""),
    privateKeyPem: privateKeyToPem(keyPair.privateKey),
    bundlePem: bundleOf(ctx, ctx.operatorTrustDomain).toPem(),
  };
}

/** Writes a credential's three files, each replaced atomically by rename. */
export function writeCredentialFiles(dataDir: string, name: string, credential: OperatorCredential): CredentialPaths {
  const paths = credentialPaths(dataDir, name);
  writeWorkloadCredentialFiles(paths.dir, { key: credential.privateKeyPem, svid: credential.certChainPem, operatorBundle: credential.bundlePem });
  return paths;
}

/**
 * Issues a new SVID for an operator identity and rewrites its files; used
 * by `ewii dev` to renew service SVIDs before they expire.
 */
export function renewOperatorCredentialFiles(
  ctx: CaContext,
  dataDir: string,
  request: { kind: OperatorIdentityKind; name: string; ttlMs?: number },
): { credential: OperatorCredential; paths: CredentialPaths } {
  const credential = issueOperatorCredential(ctx, { ...request, issuedBy: "renew" });
  return { credential, paths: writeCredentialFiles(dataDir, request.name, credential) };
}
