import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { BundleSet, TrustBundle, verifyX509Svid } from "../../services/core/identity/index.js";
import { FIXTURE_NOW, TRUST_DOMAIN_A, caught, errorCode, fixtureBundles, fixtureCa, fixtureChain } from "./helpers.js";

// One fixture per rule of the X509-SVID specification, with the code it must raise.
const DEFECTS: Array<[string, string]> = [
  ["no-uri-san.pem", "ERR_SVID_NO_URI_SAN"],
  ["two-uri-sans.pem", "ERR_SVID_MULTIPLE_URI_SANS"],
  ["invalid-spiffe-id.pem", "ERR_SVID_INVALID_SPIFFE_ID"],
  ["root-path-id.pem", "ERR_SVID_ROOT_PATH"],
  ["leaf-ca-true.pem", "ERR_SVID_LEAF_IS_CA"],
  ["leaf-key-cert-sign.pem", "ERR_SVID_KEY_USAGE"],
  ["leaf-crl-sign.pem", "ERR_SVID_KEY_USAGE"],
  ["leaf-no-digital-signature.pem", "ERR_SVID_KEY_USAGE"],
  ["leaf-no-key-usage.pem", "ERR_SVID_KEY_USAGE"],
  ["unknown-critical-extension.pem", "ERR_SVID_UNKNOWN_CRITICAL_EXTENSION"],
  ["expired.pem", "ERR_SVID_EXPIRED"],
  ["expired-intermediate.pem", "ERR_SVID_EXPIRED"],
  ["not-yet-valid.pem", "ERR_SVID_NOT_YET_VALID"],
  ["signer-not-ca.pem", "ERR_SVID_SIGNER_NOT_CA"],
  ["signer-no-key-cert-sign.pem", "ERR_SVID_SIGNER_NOT_CA"],
  ["path-length-exceeded.pem", "ERR_SVID_PATH_LENGTH"],
  ["wrong-trust-domain-ca.pem", "ERR_SVID_UNTRUSTED_CHAIN"],
  ["wrong-trust-domain-intermediate.pem", "ERR_SVID_UNTRUSTED_CHAIN"],
  ["unknown-trust-domain.pem", "ERR_SVID_UNKNOWN_TRUST_DOMAIN"],
  ["untrusted-root.pem", "ERR_SVID_UNTRUSTED_CHAIN"],
  ["bad-signature.pem", "ERR_SVID_UNTRUSTED_CHAIN"],
  ["chain-out-of-order.pem", "ERR_SVID_UNTRUSTED_CHAIN"],
];

describe("verifyX509Svid", () => {
  const bundles = fixtureBundles();

  it("accepts good svid", () => {
    const svid = verifyX509Svid(fixtureChain("good.pem"), bundles, { now: FIXTURE_NOW });
    assert.equal(svid.spiffeId.toString(), "spiffe://tenant-a.example/client/site-1");
  });

  it("returns leaf fields", () => {
    const svid = verifyX509Svid(fixtureChain("good.pem"), bundles, { now: FIXTURE_NOW });
    assert.match(svid.serial, /^[1-9a-f][0-9a-f]*$/);
    assert.equal(svid.notBefore.toISOString(), "2020-01-01T00:00:00.000Z");
    assert.equal(svid.notAfter.toISOString(), "2090-01-01T00:00:00.000Z");
    assert.equal(svid.leaf.raw.equals(fixtureChain("good.pem")[0]), true);
  });

  it("returns path to anchor", () => {
    const svid = verifyX509Svid(fixtureChain("good.pem"), bundles, { now: FIXTURE_NOW });
    assert.equal(svid.chain.length, 2);
    assert.equal(svid.chain[1].raw.equals(fixtureCa("ca-a.pem").raw), true);
  });

  it("accepts good svid with intermediate", () => {
    const svid = verifyX509Svid(fixtureChain("good-with-intermediate.pem"), bundles, { now: FIXTURE_NOW });
    assert.equal(svid.chain.length, 3);
  });

  it("accepts chain ending in anchor", () => {
    const chain = [...fixtureChain("good.pem"), fixtureCa("ca-a.pem").raw];
    assert.equal(verifyX509Svid(chain, bundles, { now: FIXTURE_NOW }).chain.length, 2);
  });

  it("accepts svid at current time", () => {
    assert.equal(errorCode(() => verifyX509Svid(fixtureChain("good.pem"), bundles)), "no error");
  });

  describe("rejects defect", () => {
    for (const [fixture, code] of DEFECTS) {
      it(fixture, () => {
        assert.equal(errorCode(() => verifyX509Svid(fixtureChain(fixture), bundles, { now: FIXTURE_NOW })), code);
      });
    }
  });

  it("rejects with unauthenticated status", () => {
    const err = caught(() => verifyX509Svid(fixtureChain("leaf-ca-true.pem"), bundles, { now: FIXTURE_NOW }));
    assert.equal(err.status, status.UNAUTHENTICATED);
  });

  it("rejects tenant b ca for tenant a id", () => {
    // The tenant B bundle is present and its CA signed the certificate, but the ID is in tenant A.
    const both = new BundleSet();
    both.set(fixtureBundles().get("tenant-b.example")!);
    both.set(new TrustBundle(TRUST_DOMAIN_A, [fixtureCa("ca-a.pem")], 1));
    assert.equal(errorCode(() => verifyX509Svid(fixtureChain("wrong-trust-domain-ca.pem"), both, { now: FIXTURE_NOW })), "ERR_SVID_UNTRUSTED_CHAIN");
  });

  it("rejects empty bundle", () => {
    const empty = new BundleSet();
    empty.set(new TrustBundle(TRUST_DOMAIN_A, [], 1));
    assert.equal(errorCode(() => verifyX509Svid(fixtureChain("good.pem"), empty, { now: FIXTURE_NOW })), "ERR_SVID_UNKNOWN_TRUST_DOMAIN");
  });

  it("rejects empty chain", () => {
    assert.equal(errorCode(() => verifyX509Svid([], bundles, { now: FIXTURE_NOW })), "ERR_SVID_MALFORMED");
  });

  it("rejects garbage der", () => {
    assert.equal(errorCode(() => verifyX509Svid([Buffer.from("30030201ff", "hex")], bundles, { now: FIXTURE_NOW })), "ERR_SVID_MALFORMED");
  });

  it("rejects truncated certificate", () => {
    const der = fixtureChain("good.pem")[0];
    assert.equal(errorCode(() => verifyX509Svid([der.subarray(0, der.length - 10)], bundles, { now: FIXTURE_NOW })), "ERR_SVID_MALFORMED");
  });

  it("rejects overlong chain", () => {
    const chain = Array.from({ length: 11 }, () => fixtureChain("good.pem")[0]);
    assert.equal(errorCode(() => verifyX509Svid(chain, bundles, { now: FIXTURE_NOW })), "ERR_SVID_MALFORMED");
  });

  it("rejects after ca rotation removes anchor", () => {
    const rotated = new BundleSet();
    rotated.set(new TrustBundle(TRUST_DOMAIN_A, [fixtureCa("ca-b.pem")], 2));
    assert.equal(errorCode(() => verifyX509Svid(fixtureChain("good.pem"), rotated, { now: FIXTURE_NOW })), "ERR_SVID_UNTRUSTED_CHAIN");
  });

  it("expired message names time", () => {
    const err = caught(() => verifyX509Svid(fixtureChain("expired.pem"), bundles, { now: FIXTURE_NOW }));
    assert.ok(err.message.includes("2021-01-01T00:00:00.000Z"));
  });
});
