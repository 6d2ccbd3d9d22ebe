import { randomBytes } from "node:crypto";
import { createCsr, generateKeyPair } from "../core/identity/index.js";
import type { CaContext } from "./context.js";
import { initOperator, openCaContext } from "./init.js";
import { createGroupCommitter } from "./group-commit.js";
import { enroll, renew, type RenewingPeer } from "./issuance.js";
import { Kek } from "./kek.js";
import { createTenant } from "./tenants.js";
import { createJoinToken } from "./tokens.js";

/**
 * A CA on a real SQLite store for the issuance benchmark: Enroll and Renew
 * run through the same domain code as the gRPC handlers, without the
 * network. Client-side work (key generation, CSR) is in the prepare
 * functions so the caller can time issuance alone.
 */
export interface IssuanceBenchFixture {
  context: CaContext;
  /** Creates a join token and a CSR over a new key. */
  prepareEnroll(): { joinToken: string; csrDer: Buffer };
  /** Redeems the token and issues an SVID; returns its serial. */
  enroll(request: { joinToken: string; csrDer: Buffer }): string;
  /** Builds the renewing peer for an issued serial and a CSR over a new key. */
  prepareRenew(serial: string): { peer: RenewingPeer; csrDer: Buffer };
  /** Issues the renewed SVID; returns its serial. */
  renew(request: { peer: RenewingPeer; csrDer: Buffer }): string;
  /** Enrolls concurrent requests through the group commit the gRPC handlers use; resolves with their serials. */
  enrollGrouped(requests: { joinToken: string; csrDer: Buffer }[]): Promise<string[]>;
  /** Renews concurrent requests through the group commit the gRPC handlers use; resolves with their serials. */
  renewGrouped(requests: { peer: RenewingPeer; csrDer: Buffer }[]): Promise<string[]>;
  close(): void;
}

const BENCH_ADMIN = "spiffe://bench.example/admin/bench";

/** Initializes a CA in `dataDir` (which must not hold one) with one tenant, "bench". */
export function createIssuanceBenchFixture(dataDir: string): IssuanceBenchFixture {
  const kekBytes = randomBytes(32);
  initOperator({ dataDir, operatorTrustDomain: "bench.example", kek: new Kek(Buffer.from(kekBytes)), services: [], admins: [], callers: [] });
  const context = openCaContext({ dataDir, kek: new Kek(kekBytes) });
  createTenant(context, "bench", BENCH_ADMIN);
  const committer = createGroupCommitter(context.store);
  let counter = 0;

  return {
    context,
    prepareEnroll() {
      counter += 1;
      const { token } = createJoinToken(context, { tenant: "bench", spiffeIdPath: `/client/c${counter}`, ttlSeconds: 0, callerSpiffeId: BENCH_ADMIN });
      return { joinToken: token, csrDer: createCsr(generateKeyPair()) };
    },
    enroll(request) {
      return enroll(context, request).record.serial;
    },
    prepareRenew(serial) {
      const current = context.store.getSvid(serial);
      if (current === undefined) throw new TypeError(`serial ${serial} was not issued by this fixture`);
      return { peer: { spiffeId: current.spiffeId, serial }, csrDer: createCsr(generateKeyPair()) };
    },
    renew(request) {
      return renew(context, request.peer, request.csrDer).record.serial;
    },
    enrollGrouped(requests) {
      return Promise.all(requests.map((request) => committer.run(() => enroll(context, request).record.serial)));
    },
    renewGrouped(requests) {
      return Promise.all(requests.map((request) => committer.run(() => renew(context, request.peer, request.csrDer).record.serial)));
    },
    close() {
      context.store.close();
      context.kek.destroy();
    },
  };
}
