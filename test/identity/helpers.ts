import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { EwiiError } from "../../services/core/errors.js";
import { BundleSet, TrustBundle, pemToDerList } from "../../services/core/identity/index.js";

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "svid");
export const TRUST_DOMAIN_A = "tenant-a.example";
export const TRUST_DOMAIN_B = "tenant-b.example";

/** A time inside the 2020-2090 validity of the long-lived fixtures. */
export const FIXTURE_NOW = new Date("2030-06-01T00:00:00Z");

export function fixtureChain(name: string): Buffer[] {
  return pemToDerList(readFileSync(join(FIXTURE_DIR, name), "utf8"));
}

export function fixtureCa(name: string): X509Certificate {
  return new X509Certificate(fixtureChain(name)[0]);
}

/** Bundles of both fixture tenants, each holding its own root only. */
export function fixtureBundles(): BundleSet {
  const set = new BundleSet();
  set.set(new TrustBundle(TRUST_DOMAIN_A, [fixtureCa("ca-a.pem")], 1));
  set.set(new TrustBundle(TRUST_DOMAIN_B, [fixtureCa("ca-b.pem")], 1));
  return set;
}

/** Runs `action` and returns the code of the EwiiError it throws, "no error", or a description of another throw. */
export function errorCode(action: () => unknown): string {
  try {
    action();
  } catch (err: unknown) {
    if (err instanceof EwiiError) return err.code;
    return `not an EwiiError: ${String(err)}`;
  }
  return "no error";
}

/** Runs `action` and returns the EwiiError it throws; fails the test otherwise. */
export function caught(action: () => unknown): EwiiError {
  try {
    action();
  } catch (err: unknown) {
    if (err instanceof EwiiError) return err;
    throw new Error(`expected an EwiiError, got ${String(err)}`);
  }
  throw new Error("expected an EwiiError, but nothing was thrown");
}
