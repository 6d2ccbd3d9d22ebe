import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, realpathSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { EwiiError } from "../core/errors.js";
import { CREDENTIAL_FILES } from "../core/workload/credentials.js";

/** Kernel pseudo-filesystems, where files written are not stored and an identity would be lost. */
const PSEUDO_FILESYSTEM_ROOTS = ["/proc", "/sys", "/dev"];

export interface PreparedIdentityDir {
  /** Absolute path of the identity folder, which now exists and is writable. */
  path: string;
  /** Removes the folders this preparation created, for when enrollment fails. */
  removeCreated(): void;
}

/**
 * Makes sure `dir` can receive an enrolled identity before a join token is
 * spent on it. The folder must be a writable directory outside /proc, /sys
 * and /dev. Missing folders are created with mode 0700, and a folder that
 * already contains svid.pem is rejected unless `force` is set. Throws
 * ERR_USAGE or ERR_IDENTITY_EXISTS naming the path.
 */
export function prepareIdentityDir(dir: string, options: { force: boolean }): PreparedIdentityDir {
  const path = resolve(dir);
  const pseudoRoot = pseudoFilesystemRootOf(path);
  if (pseudoRoot !== undefined) {
    throw usageError(`--dir ${path} is inside ${pseudoRoot}, a kernel pseudo-filesystem that cannot store files; choose a folder on a disk`);
  }

  const existing = statOrUndefined(path);
  if (existing !== undefined && !existing.isDirectory()) throw usageError(`--dir ${path} exists and is not a folder; pass a folder path`);
  const svidFile = join(path, CREDENTIAL_FILES.svid);
  if (existing !== undefined && existsSync(svidFile) && !options.force) {
    throw new EwiiError("ERR_IDENTITY_EXISTS", `${svidFile} already exists, so ${path} contains an enrolled identity; pass --force to replace it, or choose another --dir`);
  }

  let firstCreated: string | undefined;
  try {
    firstCreated = mkdirSync(path, { recursive: true, mode: 0o700 });
    const probe = join(path, `.ewii-write-check-${randomBytes(6).toString("hex")}`);
    writeFileSync(probe, "", { mode: 0o600 });
    unlinkSync(probe);
  } catch (err) {
    if (firstCreated !== undefined) rmSync(firstCreated, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
    throw usageError(`cannot create or write to --dir ${path} (${code}); choose a folder this user can write to`, err);
  }
  return {
    path,
    removeCreated: () => {
      if (firstCreated !== undefined) rmSync(firstCreated, { recursive: true, force: true });
    },
  };
}

/** Returns the pseudo-filesystem root that contains `path` once symbolic links are resolved, or undefined. */
function pseudoFilesystemRootOf(path: string): string | undefined {
  let existing = path;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  const real = join(realpathSync(existing), path.slice(existing.length));
  return PSEUDO_FILESYSTEM_ROOTS.find((root) => real === root || real.startsWith(root + sep));
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ENOTDIR") throw usageError(`--dir ${path} has a parent that is a file, not a folder (ENOTDIR); pass a folder path`, err);
    throw usageError(`cannot read --dir ${path} (${code ?? "unknown error"}); choose a folder this user can read`, err);
  }
}

function usageError(message: string, cause?: unknown): EwiiError {
  return new EwiiError("ERR_USAGE", message, cause === undefined ? {} : { cause });
}
