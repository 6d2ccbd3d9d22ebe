/**
 * Query parameters in audit records: a keyed HMAC by default, raw only for
 * datasets that the operator lists in `raw_params_datasets`.
 *
 * The digest is HMAC-SHA256 under the params key over the RFC 8785
 * canonical JSON of the parameter object, so equal parameters give equal
 * digests however the hub ordered the keys. Nodes that must compare digests
 * need the same key.
 */
import { createHmac, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EwiiError } from "../core/errors.js";
import { canonicalJson } from "./entry.js";
import { AuditErrorCode, recordInvalid } from "./errors.js";

/** Environment variable with the params key, hexadecimal or base64. */
export const PARAMS_KEY_ENV = "EWII_AUDIT_HMAC_KEY";

/** File in the data directory with a generated params key when none is configured. */
export const GENERATED_PARAMS_KEY_FILE = "params-hmac.key";

/** Shortest accepted params key, in bytes (the HMAC-SHA256 output size). */
export const MIN_PARAMS_KEY_BYTES = 32;

/** Largest canonical parameter object accepted, in bytes. */
export const MAX_PARAMS_BYTES = 64 * 1024;

/**
 * Parses the parameters a hub sent (a JSON object) and returns their
 * canonical JSON. An empty string means no parameters ("{}").
 */
export function canonicalParams(json: string): string {
  if (json === "") return "{}";
  if (Buffer.byteLength(json, "utf8") > MAX_PARAMS_BYTES) {
    throw recordInvalid(`params_raw_json is ${Buffer.byteLength(json, "utf8")} bytes, above the limit of ${MAX_PARAMS_BYTES}; send fewer or shorter parameters`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    // The parse error quotes the input, which may contain parameter values.
    throw recordInvalid("params_raw_json is not valid JSON; send the parameters as a JSON object");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw recordInvalid("params_raw_json must be a JSON object of parameter names to values");
  }
  return canonicalJson(parsed);
}

/** Computes the lowercase hexadecimal HMAC-SHA256 of canonical parameters. */
export function paramsDigest(key: Buffer, canonical: string): string {
  return createHmac("sha256", key).update(canonical, "utf8").digest("hex");
}

/** Decodes a params key written as hexadecimal or base64; `source` names where it came from. */
export function decodeParamsKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length % 2 === 0 ? Buffer.from(trimmed, "hex") : Buffer.from(trimmed, "base64");
  if (key.length < MIN_PARAMS_KEY_BYTES) {
    throw new EwiiError(
      AuditErrorCode.keyInvalid,
      `the params HMAC key from ${source} is ${key.length} bytes; use at least ${MIN_PARAMS_KEY_BYTES} random bytes, hexadecimal or base64 encoded`,
    );
  }
  return key;
}

/**
 * Loads the params key from, in order: the environment variable, the
 * configured key file, or a key generated once in the data directory. The
 * generated key keeps `ewii dev` working without set-up; production
 * configures a shared key so every audit node computes the same digests.
 */
export async function loadParamsKey(options: { keyFile?: string; dataDir: string; env?: NodeJS.ProcessEnv }): Promise<Buffer> {
  const env = options.env ?? process.env;
  const fromEnv = env[PARAMS_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== "") return decodeParamsKey(fromEnv, PARAMS_KEY_ENV);
  if (options.keyFile !== undefined) return decodeParamsKey(await readKeyFile(options.keyFile), options.keyFile);

  const generated = join(options.dataDir, GENERATED_PARAMS_KEY_FILE);
  try {
    return decodeParamsKey(await readFile(generated, "utf8"), generated);
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const key = randomBytes(MIN_PARAMS_KEY_BYTES);
  await writeFile(generated, `${key.toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  return key;
}

async function readKeyFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err: unknown) {
    throw new EwiiError(AuditErrorCode.keyInvalid, `cannot read the params HMAC key file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}; check the path and its permissions`, { cause: err });
  }
}
