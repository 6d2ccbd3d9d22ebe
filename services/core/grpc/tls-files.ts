import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { status } from "@grpc/grpc-js";
import { EwiiError, asError, isEwiiError } from "../errors.js";
import type { Logger } from "../log.js";
import { TlsMaterialSource, type TlsMaterial } from "./tls.js";

export interface TlsFiles {
  /** PEM certificate chain, leaf first. */
  certFile: string;
  /** PEM private key of the leaf. */
  keyFile: string;
  /** PEM bundle of trusted CAs. */
  caFile: string;
}

/** Quiet period after the last file event before the files are read again. */
export const TLS_FILES_DEBOUNCE_MS = 100;

/**
 * A TlsMaterialSource that reloads from three PEM files when they change.
 *
 * It watches the directories, not the files, because the usual way to
 * replace a certificate (write a temporary file, then rename it over the old
 * one) gives the path a new inode that a file watch would not follow. A
 * reload can fail on an unreadable file, or on a key that does not match the
 * certificate while only one of the two has been replaced. It then keeps the
 * previous material and logs a warning, and the next file event retries.
 */
export class FileTlsMaterialSource extends TlsMaterialSource {
  private readonly watchers: FSWatcher[] = [];
  private debounceTimer: NodeJS.Timeout | undefined;
  private reloading: Promise<boolean> | undefined;

  private constructor(
    readonly files: TlsFiles,
    initial: TlsMaterial,
    private readonly logger: Logger,
  ) {
    super(initial);
  }

  /** Reads the files once and starts watching them. */
  static async open(files: TlsFiles, logger: Logger): Promise<FileTlsMaterialSource> {
    const source = new FileTlsMaterialSource(files, await readTlsFiles(files), logger);
    source.startWatching();
    return source;
  }

  /**
   * Reads the files now and applies them if they differ from the current
   * material. Returns true when the material changed. Read and validation
   * failures are logged and leave the current material in place.
   */
  reload(): Promise<boolean> {
    this.reloading ??= this.reloadOnce().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  /** Stops watching the files. */
  close(): void {
    clearTimeout(this.debounceTimer);
    for (const watcher of this.watchers.splice(0)) watcher.close();
  }

  private startWatching(): void {
    const paths = [this.files.certFile, this.files.keyFile, this.files.caFile].map((file) => resolve(file));
    const names = new Set(paths.map((path) => basename(path)));
    for (const directory of new Set(paths.map((path) => dirname(path)))) {
      const watcher = watch(directory, { persistent: false }, (_event, filename) => {
        // Some platforms omit the file name; reload then to be safe.
        if (filename === null || names.has(filename.toString())) this.scheduleReload();
      });
      watcher.on("error", (err: unknown) => {
        this.logger.warn("TLS file watch failed; call reload() to pick up new files", {
          directory,
          cause: asError(err).message,
        });
      });
      this.watchers.push(watcher);
    }
  }

  private scheduleReload(): void {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      void this.reload();
    }, TLS_FILES_DEBOUNCE_MS);
    this.debounceTimer.unref();
  }

  private async reloadOnce(): Promise<boolean> {
    try {
      const next = await readTlsFiles(this.files);
      const current = this.current();
      if (
        next.certChainPem === current.certChainPem &&
        next.privateKeyPem === current.privateKeyPem &&
        next.trustedCasPem === current.trustedCasPem
      ) {
        return false;
      }
      this.update(next);
      this.logger.info("TLS material reloaded from files", { cert_file: this.files.certFile, ca_file: this.files.caFile });
      return true;
    } catch (err: unknown) {
      this.logger.warn("TLS material reload failed; the previous certificate stays in use", {
        cert_file: this.files.certFile,
        error_code: isEwiiError(err) ? err.code : undefined,
        cause: asError(err).message,
      });
      return false;
    }
  }
}

/** Opens a FileTlsMaterialSource over the three files; see that class. */
export function watchTlsFiles(files: TlsFiles, logger: Logger): Promise<FileTlsMaterialSource> {
  return FileTlsMaterialSource.open(files, logger);
}

async function readTlsFiles(files: TlsFiles): Promise<TlsMaterial> {
  const [certChainPem, privateKeyPem, trustedCasPem] = await Promise.all([
    readPem(files.certFile, "certificate chain"),
    readPem(files.keyFile, "private key"),
    readPem(files.caFile, "CA bundle"),
  ]);
  return { certChainPem, privateKeyPem, trustedCasPem };
}

async function readPem(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err: unknown) {
    throw new EwiiError("ERR_TLS_FILE_UNREADABLE", `cannot read the TLS ${what} file ${path}: ${asError(err).message}`, {
      status: status.FAILED_PRECONDITION,
      cause: err,
    });
  }
}
