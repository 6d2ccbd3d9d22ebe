import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { EwiiError } from "../core/errors.js";
import { CaErrorCode } from "./errors.js";

/**
 * The key-encryption key (KEK) that seals CA private keys at rest with
 * XChaCha20-Poly1305. A sealed value is `nonce (24 bytes) || ciphertext ||
 * tag (16 bytes)`; the associated data binds it to its purpose and CA id,
 * so a sealed key copied onto another CA row fails to open.
 */

export const KEK_BYTES = 32;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;

/** Environment variable that carries the KEK in hexadecimal or base64. */
export const KEK_ENV_VAR = "EWII_KEK";
/** Config key naming the KEK file. */
export const KEK_FILE_CONFIG_KEY = "kek_file";

/** File name of the KEK that `ewii init` creates inside the data directory. */
export const DEFAULT_KEK_FILE_NAME = "kek";

/**
 * Returns the KEK file to use: the configured one, else `<dataDir>/kek` when
 * it exists and EWII_KEK is unset, else undefined (loadKek then reads EWII_KEK).
 */
export function resolveKekFile(configured: string | undefined, dataDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (configured !== undefined && configured !== "") return configured;
  const envKek = env[KEK_ENV_VAR];
  if (envKek !== undefined && envKek !== "") return undefined;
  const inDataDir = join(dataDir, DEFAULT_KEK_FILE_NAME);
  return existsSync(inDataDir) ? inDataDir : undefined;
}

/** Plaintext sealed into the store's meta table to detect a wrong KEK at startup. */
const KEK_CHECK_PLAINTEXT = Buffer.from("ewii-ca-kek-check-v1", "utf8");
const KEK_CHECK_AAD = Buffer.from("ewii-ca/kek-check", "utf8");

export class Kek {
  readonly #key: Uint8Array;
  #destroyed = false;

  /** Takes ownership of `key`: destroy() zeroes it. */
  constructor(key: Uint8Array) {
    if (key.length !== KEK_BYTES) throw new TypeError(`a KEK is ${KEK_BYTES} bytes, got ${key.length}`);
    this.#key = key;
  }

  /** Seals a CA private key (PKCS#8 DER) for the CA `caId`. */
  sealCaKey(caId: string, pkcs8Der: Uint8Array): Buffer {
    return this.#seal(pkcs8Der, caKeyAad(caId));
  }

  /**
   * Opens a sealed CA private key. The caller owns the returned buffer and
   * should zero it after use. Throws ERR_KEK_WRONG when authentication fails.
   */
  openCaKey(caId: string, sealed: Uint8Array): Buffer {
    return this.#open(sealed, caKeyAad(caId), `the sealed private key of CA ${caId}`);
  }

  /** Returns the check value stored in meta at initialization. */
  createCheckValue(): Buffer {
    return this.#seal(KEK_CHECK_PLAINTEXT, KEK_CHECK_AAD);
  }

  /** Throws ERR_KEK_WRONG unless `check` was sealed under this KEK. */
  verifyCheckValue(check: Uint8Array): void {
    const plaintext = this.#open(check, KEK_CHECK_AAD, "the KEK check value");
    if (!plaintext.equals(KEK_CHECK_PLAINTEXT)) throw wrongKek();
  }

  /** Zeroes the key; later calls throw. */
  destroy(): void {
    this.#key.fill(0);
    this.#destroyed = true;
  }

  #seal(plaintext: Uint8Array, aad: Uint8Array): Buffer {
    this.#assertUsable();
    const nonce = randomBytes(NONCE_BYTES);
    const ciphertext = xchacha20poly1305(this.#key, nonce, aad).encrypt(plaintext);
    return Buffer.concat([nonce, ciphertext]);
  }

  #open(sealed: Uint8Array, aad: Uint8Array, what: string): Buffer {
    this.#assertUsable();
    if (sealed.length < NONCE_BYTES + TAG_BYTES) {
      throw new EwiiError(CaErrorCode.storeCorrupt, `${what} is ${sealed.length} bytes, shorter than nonce and tag; the CA store is damaged`);
    }
    const nonce = sealed.subarray(0, NONCE_BYTES);
    try {
      const plaintext = xchacha20poly1305(this.#key, nonce, aad).decrypt(sealed.subarray(NONCE_BYTES));
      return Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
    } catch (err) {
      throw wrongKek(err);
    }
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new TypeError("the KEK was destroyed");
  }
}

function caKeyAad(caId: string): Buffer {
  return Buffer.from(`ewii-ca/ca-key/${caId}`, "utf8");
}

function wrongKek(cause?: unknown): EwiiError {
  return new EwiiError(CaErrorCode.kekWrong, "the key-encryption key does not decrypt this CA store: use the KEK it was created with", { cause });
}

export interface KekSource {
  /** Path of a file with the KEK: 32 raw bytes, or hexadecimal or base64 text. */
  kekFile?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Loads the KEK from `kekFile` or else from EWII_KEK. The file must not be
 * readable or writable by group or others.
 */
export function loadKek(source: KekSource): Kek {
  const env = source.env ?? process.env;
  if (source.kekFile !== undefined && source.kekFile !== "") return new Kek(readKekFile(source.kekFile));
  const text = env[KEK_ENV_VAR];
  if (text !== undefined && text !== "") return new Kek(decodeKekText(text.trim(), `environment variable ${KEK_ENV_VAR}`));
  throw new EwiiError(
    CaErrorCode.kekMissing,
    `no key-encryption key: set "${KEK_FILE_CONFIG_KEY}" to a file holding 32 random bytes (hex or base64), set ${KEK_ENV_VAR}, or keep the file "${DEFAULT_KEK_FILE_NAME}" that "ewii init" wrote in the data directory; generate a new one with "openssl rand -hex 32"`,
  );
}

function readKekFile(file: string): Uint8Array {
  let mode: number;
  let content: Buffer;
  try {
    mode = statSync(file).mode;
    content = readFileSync(file);
  } catch (err) {
    throw new EwiiError(CaErrorCode.kekMissing, `cannot read the KEK file ${file} (${(err as NodeJS.ErrnoException).code ?? "error"}); check "${KEK_FILE_CONFIG_KEY}"`, {
      cause: err,
    });
  }
  if ((mode & 0o077) !== 0) {
    content.fill(0);
    throw new EwiiError(
      CaErrorCode.kekFilePermissions,
      `the KEK file ${file} has mode ${(mode & 0o777).toString(8)}, readable by group or others; run "chmod 600 ${file}"`,
    );
  }
  if (content.length === KEK_BYTES) return content;
  try {
    return decodeKekText(content.toString("utf8").trim(), `KEK file ${file}`);
  } finally {
    content.fill(0);
  }
}

function decodeKekText(text: string, where: string): Uint8Array {
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, "hex");
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) key = Buffer.from(text, text.includes("-") || text.includes("_") ? "base64url" : "base64");
  if (key === undefined || key.length !== KEK_BYTES) {
    throw new EwiiError(
      CaErrorCode.kekInvalid,
      `the ${where} does not hold a ${KEK_BYTES}-byte key: expected 64 hexadecimal characters, 44 base64 characters or ${KEK_BYTES} raw bytes`,
    );
  }
  return key;
}
