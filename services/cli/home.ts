import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { EwiiError } from "../core/errors.js";

/**
 * An Ewii home folder: where `ewii init` and `ewii dev` write state and
 * credentials, and where the CLI finds the service addresses
 * (endpoints.json) and the admin SVID (credentials/admin/).
 */
export const DEFAULT_HOME = ".ewii/dev";
export const ENDPOINTS_FILE = "endpoints.json";

export interface Endpoints {
  operator_trust_domain: string;
  ca: string;
  policy: string;
  audit: string;
  hub: string;
  relays: string[];
}

export function homeDir(option: string | undefined): string {
  return resolve(option ?? process.env.EWII_HOME ?? DEFAULT_HOME);
}

export function credentialsDir(home: string, name: string): string {
  return join(home, "credentials", name);
}

export function writeEndpoints(home: string, endpoints: Endpoints): void {
  writeFileSync(join(home, ENDPOINTS_FILE), JSON.stringify(endpoints, null, 2) + "\n", { mode: 0o644 });
}

/** Reads endpoints.json. When it is missing, the error explains how to create it or which flags to pass instead. */
export function readEndpoints(home: string): Endpoints {
  const path = join(home, ENDPOINTS_FILE);
  if (!existsSync(path)) {
    throw new EwiiError("ERR_ENDPOINTS_MISSING", `no ${ENDPOINTS_FILE} in ${home}: start the services with "ewii dev" (or "make run"), pass --home to the folder that has it, or set EWII_HOME`);
  }
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Endpoints;
  } catch (err) {
    throw new EwiiError("ERR_ENDPOINTS_INVALID", `${path} is not valid JSON: ${(err as Error).message}; delete it and run "ewii dev" again`, { cause: err });
  }
}
