import { createPrivateKey, sign, type KeyObject } from "node:crypto";
import type { Logger } from "../core/log.js";
import { loadCredentials } from "../core/workload/credentials.js";
import type { ClientConfig } from "./config.js";
import { QueryHandler, type SummarySigner } from "./query/handler.js";
import type { QueryRunner } from "./session-endpoint.js";

export interface ClosableQueryRunner extends QueryRunner {
  close(): Promise<void>;
}

/**
 * Signs result summaries with the client's current SVID key, read from the
 * identity folder. After a renewal, `reload()` switches to the new key. The
 * runtime closes open hub sessions at the same time, because a hub checks
 * the signature against the certificate of its session's handshake.
 */
export class IdentitySigner implements SummarySigner {
  private key: KeyObject;
  private currentSerial: string;

  constructor(private readonly identityDir: string) {
    const credentials = loadCredentials(identityDir);
    this.key = createPrivateKey(credentials.privateKeyPem);
    this.currentSerial = credentials.serial;
  }

  get serial(): string {
    return this.currentSerial;
  }

  sign(data: Buffer): Buffer {
    return sign("sha256", data, { key: this.key, dsaEncoding: "der" });
  }

  reload(): void {
    const credentials = loadCredentials(this.identityDir);
    this.key = createPrivateKey(credentials.privateKeyPem);
    this.currentSerial = credentials.serial;
  }
}

/** Creates the client's query handler over its configured datasets, signing with its SVID key. */
export function createQueryHandler(config: ClientConfig, logger: Logger): ClosableQueryRunner & { signer: IdentitySigner } {
  const signer = new IdentitySigner(config.identity_dir);
  const handler = new QueryHandler({ config, signer, logger });
  return {
    signer,
    handle: (request, out, signal) => handler.handle(request, out, signal),
    close: () => handler.close(),
  };
}
