import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createJoinToken, enroll, loadKek, openCaContext, renewOperatorCredentialFiles } from "../../services/ca/index.js";
import { caClient } from "../../services/cli/connect.js";
import { credentialsDir } from "../../services/cli/home.js";
import { OPERATOR_SERVICES } from "../../services/cli/commands/serve.js";
import { callUnary } from "../../services/core/grpc/index.js";
import { createCsr, derToPem, generateKeyPair, privateKeyToPem } from "../../services/core/identity/index.js";
import { silentLogger } from "../../services/core/log.js";
import { loadCredentials, writeCredentialFiles } from "../../services/core/workload/credentials.js";
import { DEMO_CLIENT_PATH, DEMO_TENANT } from "../../services/dev/demo-client.js";
import { OPERATOR_TRUST_DOMAIN, startDevStack, type DevStack } from "../../services/dev/stack.js";
import { hubQuery } from "./helpers.js";

const DEMO_QUERY = "revenue_by_country";
const TWO_DAYS_MS = 2 * 24 * 3600 * 1000;

/** Rewrites every operator credential and the demo client's SVID as issued two days ago, so all have expired. */
function expireEveryCredential(home: string): void {
  const kek = loadKek({ kekFile: join(home, "kek") });
  const issuedAt = new Date(Date.now() - TWO_DAYS_MS);
  const ctx = openCaContext({ dataDir: home, kek, now: () => issuedAt });
  try {
    for (const name of OPERATOR_SERVICES) renewOperatorCredentialFiles(ctx, home, { kind: "service", name });
    renewOperatorCredentialFiles(ctx, home, { kind: "admin", name: "admin" });
    for (const name of ["reports", "billing"]) renewOperatorCredentialFiles(ctx, home, { kind: "caller", name });

    const { token } = createJoinToken(ctx, { tenant: DEMO_TENANT, spiffeIdPath: DEMO_CLIENT_PATH, ttlSeconds: 0, callerSpiffeId: `spiffe://${OPERATOR_TRUST_DOMAIN}/admin/admin` });
    const keyPair = generateKeyPair();
    const issued = enroll(ctx, { joinToken: token, csrDer: createCsr(keyPair) });
    writeCredentialFiles(join(home, "clients", "acme-site-1", "identity"), {
      svid: issued.certChainDer.map((der) => derToPem(der, "CERTIFICATE")).join(""),
      key: privateKeyToPem(keyPair.privateKey),
    });
  } finally {
    ctx.store.close();
    kek.destroy();
  }
}

describe("ewii dev restart", function () {
  this.timeout(120_000);
  let home: string;
  let stack: DevStack | undefined;

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), "ewii-dev-restart-"));
  });

  afterEach(async () => {
    await stack?.close();
    stack = undefined;
    rmSync(home, { recursive: true, force: true });
  });

  function clientIdentityDir(): string {
    return join(home, "clients", "acme-site-1", "identity");
  }

  function start(): Promise<DevStack> {
    return startDevStack({ home, basePort: 0, logger: silentLogger(), relays: 1 });
  }

  it("re-enrolls a revoked demo client", async () => {
    const first = await start();
    const revokedSerial = loadCredentials(clientIdentityDir()).serial;
    const ca = caClient(first.admin);
    await callUnary(ca.revoke.bind(ca), { target: { spiffeId: first.clientSpiffeId }, reason: "README walk-through" }).finally(() => ca.close());
    await first.close();

    stack = await start();
    const result = await hubQuery(stack, DEMO_CLIENT_PATH, DEMO_QUERY);
    assert.notEqual(loadCredentials(clientIdentityDir()).serial, revokedSerial);
    assert.ok(result.rows.length > 0, "the query returned no rows");
  });

  it("restarts after every SVID expired", async () => {
    await (await start()).close();
    expireEveryCredential(home);

    stack = await start();
    const result = await hubQuery(stack, DEMO_CLIENT_PATH, DEMO_QUERY);
    assert.ok(loadCredentials(credentialsDir(home, "hub")).notAfter.getTime() > Date.now(), "the hub SVID was not re-issued");
    assert.ok(result.rows.length > 0, "the query returned no rows");
  });
});
