import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { z } from "zod";
import { hostPort } from "../core/config.js";
import { EwiiError } from "../core/errors.js";

/**
 * An Ewii home folder: where `ewii init` and `ewii dev` write state and
 * credentials, and where the CLI finds the service addresses
 * (endpoints.json) and the admin SVID (credentials/admin/).
 */
export const DEFAULT_HOME = ".ewii/dev";
export const ENDPOINTS_FILE = "endpoints.json";

const endpointsSchema = z.object({
  operator_trust_domain: z.string().min(1),
  ca: hostPort,
  policy: hostPort,
  audit: hostPort,
  hub: hostPort,
  relays: z.array(hostPort),
});

/** Service addresses ("host:port") the CLI dials. */
export type Endpoints = z.infer<typeof endpointsSchema>;

export function homeDir(option: string | undefined): string {
  const fromEnv = process.env.EWII_HOME === "" ? undefined : process.env.EWII_HOME;
  return resolve(option ?? fromEnv ?? DEFAULT_HOME);
}

export function credentialsDir(home: string, name: string): string {
  return join(home, "credentials", name);
}

export function writeEndpoints(home: string, endpoints: Endpoints): void {
  writeFileSync(join(home, ENDPOINTS_FILE), JSON.stringify(endpoints, null, 2) + "\n", { mode: 0o644 });
}

/** Reads endpoints.json (or `file`). Its errors name the file and the flags or commands that create it. */
export function readEndpoints(home: string, file?: string): Endpoints {
  const path = file === undefined ? join(home, ENDPOINTS_FILE) : resolve(file);
  if (!existsSync(path)) {
    const where = file === undefined ? `no ${ENDPOINTS_FILE} in ${home}` : `the endpoints file ${path} does not exist`;
    throw new EwiiError("ERR_ENDPOINTS_MISSING", `${where}: start the services with "ewii dev" (or "make run") or "ewii init", pass --home to the folder that has ${ENDPOINTS_FILE} (or set EWII_HOME), or pass --endpoints FILE`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new EwiiError("ERR_ENDPOINTS_INVALID", `${path} is not valid JSON: ${(err as Error).message}; fix it or delete it and run "ewii dev" again`, { cause: err });
  }
  const result = endpointsSchema.safeParse(parsed);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `"${issue.path.join(".") || "(top level)"}": ${issue.message}`).join("; ");
    throw new EwiiError("ERR_ENDPOINTS_INVALID", `${path} is not a valid endpoints file (${problems}); expected keys operator_trust_domain, ca, policy, audit, hub and relays`);
  }
  return result.data;
}

/** Endpoints of services started on their default ports, as `ewii init` writes them. */
export function defaultEndpoints(operatorTrustDomain: string): Endpoints {
  return {
    operator_trust_domain: operatorTrustDomain,
    ca: "127.0.0.1:7401",
    policy: "127.0.0.1:7402",
    audit: "127.0.0.1:7403",
    hub: "127.0.0.1:7405",
    relays: ["127.0.0.1:7404"],
  };
}
