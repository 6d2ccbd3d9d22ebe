import { strict as assert } from "node:assert";
import { statSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../../services/core/log.js";
import { loadCredentials } from "../../services/core/workload/credentials.js";
import { RENEWAL_FRACTION, RENEWAL_JITTER_FRACTION, SvidRenewer } from "../../services/core/workload/renewal.js";
import { credentialsDir } from "../../services/cli/home.js";
import { hubQuery, startTestStack } from "../e2e/helpers.js";
import { DEMO_CLIENT_PATH } from "../../services/dev/demo-client.js";

const HOUR_MS = 3_600_000;

describe("SVID renewal", function () {
  this.timeout(120_000);

  describe("schedule", () => {
    const renewerAt = (nowMs: number, random: number) =>
      new SvidRenewer({ credentialsDir: "/unused", caAddress: "127.0.0.1:1", operatorTrustDomain: "operator.example", logger: silentLogger(), onRenewed: () => undefined, now: () => nowMs, random: () => random });
    const notBefore = new Date(0);
    const notAfter = new Date(24 * HOUR_MS);

    it("renews at half-life without jitter", () => {
      assert.equal(renewerAt(0, 0).delayUntilRenewalMs(notBefore, notAfter), 24 * HOUR_MS * RENEWAL_FRACTION);
    });

    it("jitter only brings renewal earlier", () => {
      const delay = renewerAt(0, 0.999).delayUntilRenewalMs(notBefore, notAfter);
      assert.ok(delay < 12 * HOUR_MS);
      assert.ok(delay >= 12 * HOUR_MS - 24 * HOUR_MS * RENEWAL_JITTER_FRACTION);
    });

    it("past half-life renews at once", () => {
      assert.equal(renewerAt(20 * HOUR_MS, 0.5).delayUntilRenewalMs(notBefore, notAfter), 0);
    });
  });

  describe("against a running stack", () => {
    let stack: Awaited<ReturnType<typeof startTestStack>>;

    before(async () => {
      stack = await startTestStack();
    });

    after(async () => {
      await stack?.cleanup();
    });

    it("renews a service SVID with a new key", async () => {
      const dir = credentialsDir(stack.home, "hub");
      const before = loadCredentials(dir);
      const renewed = await new SvidRenewer({ credentialsDir: dir, caAddress: stack.endpoints.ca, operatorTrustDomain: "operator.example", logger: silentLogger(), onRenewed: () => undefined }).renewNow();
      assert.notEqual(renewed.serial, before.serial);
      assert.notEqual(renewed.privateKeyPem, before.privateKeyPem);
      assert.equal(renewed.spiffeId.toString(), before.spiffeId.toString());
      assert.equal(statSync(join(dir, "key.pem")).mode & 0o777, 0o600);
    });

    it("renews the demo client's SVID and keeps serving", async () => {
      const dir = join(stack.home, "clients", "acme-site-1", "identity");
      const before = loadCredentials(dir);
      const renewed = await new SvidRenewer({ credentialsDir: dir, caAddress: stack.endpoints.ca, operatorTrustDomain: "operator.example", logger: silentLogger(), onRenewed: () => undefined }).renewNow();
      assert.notEqual(renewed.serial, before.serial);
      assert.ok(renewed.tenantBundlePem !== undefined);
      // The running client still holds its old key in memory; the old SVID stays valid until it expires.
      const result = await hubQuery(stack, DEMO_CLIENT_PATH, "customer_invoices", { customer_id: { intValue: 2n } });
      assert.ok(result.rows.length > 0);
    });
  });
});
