/**
 * Signed checkpoints of the audit chain.
 *
 * A checkpoint is an entry in the chain (kind "checkpoint") with its own
 * sequence. It states the log id, its sequence, its time and `previous_hash`,
 * which is the chain hash of every entry before it, and carries an Ed25519
 * signature (RFC 8032) over the JCS canonical JSON of those fields plus
 * `kind` and `key_id`. Anyone who rewrites records before a checkpoint must
 * also forge its signature or delete it.
 *
 * The signing key is a dedicated Ed25519 key in the data directory, not the
 * service's SVID key: SVID keys rotate every day, while a checkpoint must
 * stay verifiable for as long as the log is kept.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EwiiError } from "../core/errors.js";
import { ENTRY_KIND_CHECKPOINT, canonicalJson, entryHash } from "./entry.js";
import type { StoredEntry } from "./entry.js";
import { AuditErrorCode } from "./errors.js";

/** PKCS#8 PEM private key file in the data directory, mode 0600. */
export const CHECKPOINT_PRIVATE_KEY_FILE = "checkpoint-ed25519.key.pem";
/** SPKI PEM public key file in the data directory; copy it elsewhere to verify a copy of the log. */
export const CHECKPOINT_PUBLIC_KEY_FILE = "checkpoint-ed25519.pub.pem";

export interface CheckpointKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Lowercase hexadecimal SHA-256 of the public key's SPKI DER. */
  keyId: string;
}

/** The signed fields of a checkpoint, before its signature and hash. */
export interface CheckpointFields {
  logId: string;
  sequence: bigint;
  time: Date;
  previousHash: string;
}

/** Returns the key id of a public key: SHA-256 of its SPKI DER, hexadecimal. */
export function checkpointKeyId(publicKey: KeyObject): string {
  return createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex");
}

/** Builds a checkpoint key from an Ed25519 private key. */
export function checkpointKeyFrom(privateKey: KeyObject): CheckpointKey {
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new TypeError(`checkpoint signing key must be Ed25519, got ${privateKey.asymmetricKeyType ?? privateKey.type}`);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: checkpointKeyId(publicKey) };
}

/** Loads the checkpoint key from the data directory, creating it on first use. */
export async function loadOrCreateCheckpointKey(dataDir: string): Promise<CheckpointKey> {
  const privatePath = join(dataDir, CHECKPOINT_PRIVATE_KEY_FILE);
  let pem: string | undefined;
  try {
    pem = await readFile(privatePath, "utf8");
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (pem !== undefined) {
    try {
      return checkpointKeyFrom(createPrivateKey(pem));
    } catch (err: unknown) {
      throw new EwiiError(AuditErrorCode.keyInvalid, `the checkpoint key ${privatePath} is not a valid Ed25519 PKCS#8 PEM key; restore it from backup`, { cause: err });
    }
  }
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  await writeFile(privatePath, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
  await writeFile(join(dataDir, CHECKPOINT_PUBLIC_KEY_FILE), publicKey.export({ type: "spki", format: "pem" }), { mode: 0o644 });
  return checkpointKeyFrom(privateKey);
}

/** Reads an Ed25519 public key from an SPKI PEM file. */
export async function readCheckpointPublicKey(file: string): Promise<KeyObject> {
  let key: KeyObject;
  try {
    key = createPublicKey(await readFile(file, "utf8"));
  } catch (err: unknown) {
    throw new EwiiError(AuditErrorCode.keyInvalid, `cannot read an Ed25519 public key from ${file}; pass the ${CHECKPOINT_PUBLIC_KEY_FILE} of the audit node`, { cause: err });
  }
  if (key.asymmetricKeyType !== "ed25519") {
    throw new EwiiError(AuditErrorCode.keyInvalid, `${file} contains a ${key.asymmetricKeyType ?? "non-asymmetric"} key; the checkpoint key is Ed25519`);
  }
  return key;
}

/** Builds a signed checkpoint entry with its hash. */
export function buildCheckpoint(fields: CheckpointFields, key: CheckpointKey): StoredEntry {
  const entry: StoredEntry = {
    kind: ENTRY_KIND_CHECKPOINT,
    sequence: fields.sequence.toString(10),
    time: fields.time.toISOString(),
    previous_hash: fields.previousHash,
    log_id: fields.logId,
    key_id: key.keyId,
  };
  entry.signature = sign(null, Buffer.from(canonicalJson(entry), "utf8"), key.privateKey).toString("base64");
  entry.hash = entryHash(entry);
  return entry;
}

/** Checks a checkpoint's Ed25519 signature; false for any malformed field. */
export function checkpointSignatureValid(entry: StoredEntry, publicKey: KeyObject): boolean {
  const { signature, hash: _hash, ...signed } = entry;
  if (typeof signature !== "string") return false;
  try {
    return verify(null, Buffer.from(canonicalJson(signed), "utf8"), publicKey, Buffer.from(signature, "base64"));
  } catch {
    // A malformed key or signature is an invalid signature, not an error.
    return false;
  }
}
