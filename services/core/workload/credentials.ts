import { X509Certificate } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { EwiiError } from "../errors.js";
import { SpiffeId, pemToDerList, serialHex } from "../identity/index.js";

/**
 * Files of one workload identity, in one directory:
 * - svid.pem: the SVID leaf first, then any intermediates (PEM)
 * - key.pem: its private key (PKCS#8 PEM), mode 0600
 * - bundle.pem: the operator trust domain's CA certificates (PEM)
 * - tenant-bundle.pem: the tenant's CA certificates, for tenant clients only
 */
export const CREDENTIAL_FILES = {
  svid: "svid.pem",
  key: "key.pem",
  operatorBundle: "bundle.pem",
  tenantBundle: "tenant-bundle.pem",
} as const;

export interface WorkloadCredentials {
  dir: string;
  certChainPem: string;
  privateKeyPem: string;
  operatorBundlePem: string;
  tenantBundlePem: string | undefined;
  spiffeId: SpiffeId;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** Reads a workload's credential directory, with errors that name the missing file. */
export function loadCredentials(dir: string): WorkloadCredentials {
  const read = (name: string, required: boolean): string | undefined => {
    const path = join(dir, name);
    try {
      return readFileSync(path, "utf8");
    } catch (err) {
      if (!required && (err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new EwiiError("ERR_CREDENTIALS_MISSING", `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; run "ewii init" (operator services) or "ewii client enroll" (clients) to create credentials`, {
        status: status.FAILED_PRECONDITION,
        cause: err,
      });
    }
  };
  const certChainPem = read(CREDENTIAL_FILES.svid, true) as string;
  const privateKeyPem = read(CREDENTIAL_FILES.key, true) as string;
  const operatorBundlePem = read(CREDENTIAL_FILES.operatorBundle, true) as string;
  const tenantBundlePem = read(CREDENTIAL_FILES.tenantBundle, false);
  return { dir, certChainPem, privateKeyPem, operatorBundlePem, tenantBundlePem, ...describeLeaf(certChainPem, join(dir, CREDENTIAL_FILES.svid)) };
}

/** Reads the SPIFFE ID, serial and validity of the first certificate of a PEM chain. */
export function describeLeaf(certChainPem: string, source: string): { spiffeId: SpiffeId; serial: string; notBefore: Date; notAfter: Date } {
  const [leafDer] = pemToDerList(certChainPem);
  if (leafDer === undefined) throw new EwiiError("ERR_CREDENTIALS_INVALID", `${source} contains no certificate; enroll the client or run ewii init again`, { status: status.FAILED_PRECONDITION });
  const leaf = new X509Certificate(leafDer);
  const uri = /URI:(spiffe:\/\/[^,\s]+)/.exec(leaf.subjectAltName ?? "");
  if (uri === null) throw new EwiiError("ERR_CREDENTIALS_INVALID", `${source}: the certificate has no spiffe:// URI SAN`, { status: status.FAILED_PRECONDITION });
  return { spiffeId: SpiffeId.parse(uri[1]), serial: serialHex(leaf), notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) };
}

/**
 * Writes credential files atomically (write to a temporary name, then
 * rename) with mode 0600, in a directory with mode 0700.
 */
export function writeCredentialFiles(dir: string, files: Partial<Record<keyof typeof CREDENTIAL_FILES, string>>): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  for (const [key, content] of Object.entries(files)) {
    if (content === undefined) continue;
    const path = join(dir, CREDENTIAL_FILES[key as keyof typeof CREDENTIAL_FILES]);
    const temporary = `${path}.tmp-${process.pid}`;
    writeFileSync(temporary, content, { mode: 0o600 });
    chmodSync(temporary, 0o600);
    renameSync(temporary, path);
  }
}

/** Returns true when a file is readable by group or others. */
export function isGroupOrWorldReadable(path: string): boolean {
  return (statSync(path).mode & 0o077) !== 0;
}
