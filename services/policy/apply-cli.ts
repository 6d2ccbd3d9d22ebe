import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { status } from "@grpc/grpc-js";
import type { PolicyServiceClient } from "../../gen/ewii/policy/v1/policy.js";
import { EwiiError } from "../core/errors.js";
import { callUnary } from "../core/grpc/index.js";
import { documentSha256, parsePolicy } from "./document.js";
import { PolicyErrorCode } from "./errors.js";

export interface ApplyPolicyFileResult {
  version: number;
  documentSha256: string;
}

/**
 * Implements `ewii policy apply -f FILE`: reads the file, validates it
 * locally so that errors show before any network call, sends Apply and
 * prints the new version with `print`.
 */
export async function applyPolicyFile(
  file: string,
  client: PolicyServiceClient,
  options: { print?: (line: string) => void; deadlineMs?: number } = {},
): Promise<ApplyPolicyFileResult> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err: unknown) {
    const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
    throw new EwiiError(PolicyErrorCode.fileUnreadable, `cannot read policy file ${file}: ${code}; check the path and its permissions`, { status: status.INVALID_ARGUMENT, cause: err });
  }
  const sourceName = basename(file);
  const document = parsePolicy(text, sourceName);
  const localSha256 = documentSha256(document);

  const response = await callUnary(client.apply.bind(client), { documentYaml: text, sourceName }, { deadlineMs: options.deadlineMs });
  const result = { version: Number(response.version), documentSha256: response.documentSha256 };
  if (result.documentSha256 !== localSha256) {
    // The service applied a different canonical form, which happens when it runs another schema version.
    (options.print ?? console.log)(`warning: the service stored SHA-256 ${result.documentSha256}, the local file hashes to ${localSha256}`);
  }
  (options.print ?? console.log)(`applied ${sourceName} as policy version ${result.version} (sha256 ${result.documentSha256})`);
  return result;
}
