import type { KeyObject } from "node:crypto";
import { EwiiError } from "../errors.js";
import { status } from "@grpc/grpc-js";

/** Line width of base64 text inside a PEM block, from RFC 7468 section 2. */
const PEM_LINE_CHARS = 64;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Encodes DER bytes as one RFC 7468 PEM block with the given label, e.g. "CERTIFICATE". */
export function derToPem(der: Uint8Array, label: string): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += PEM_LINE_CHARS) lines.push(base64.slice(i, i + PEM_LINE_CHARS));
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * Decodes every PEM block in `pem`, in order, whatever its label. Text
 * outside blocks (comments, `openssl x509 -text` output) is ignored.
 * Throws ERR_PEM_INVALID when there is no block or a block is not base64.
 */
export function pemToDerList(pem: string): Buffer[] {
  const result: Buffer[] = [];
  for (const match of pem.matchAll(PEM_BLOCK)) {
    const body = match[2].replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) {
      throw new EwiiError("ERR_PEM_INVALID", `PEM block "${match[1]}" number ${result.length + 1} is not valid base64; re-export it`, {
        status: status.INVALID_ARGUMENT,
      });
    }
    result.push(Buffer.from(body, "base64"));
  }
  if (result.length === 0) {
    throw new EwiiError("ERR_PEM_INVALID", "no PEM block found; expected text with -----BEGIN ...----- and -----END ...----- lines", {
      status: status.INVALID_ARGUMENT,
    });
  }
  return result;
}

/** Exports a private key as PKCS#8 PEM ("PRIVATE KEY"). */
export function privateKeyToPem(key: KeyObject): string {
  if (key.type !== "private") throw new TypeError(`privateKeyToPem needs a private key, got a ${key.type} key`);
  return key.export({ format: "pem", type: "pkcs8" }).toString();
}
