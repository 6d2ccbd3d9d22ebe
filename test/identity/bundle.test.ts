import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BundleSet, TrustBundle, createRootCa, pemToDerList } from "../../services/core/identity/index.js";
import { caught, errorCode, fixtureCa } from "./helpers.js";

const TD = "acme.example";

function makeCa(trustDomain = TD) {
  return createRootCa({ trustDomain, commonName: `${trustDomain} CA`, notBefore: new Date("2020-01-01T00:00:00Z"), notAfter: new Date("2090-01-01T00:00:00Z") });
}

describe("TrustBundle", () => {
  const first = makeCa();
  const second = makeCa();
  const bundle = new TrustBundle(TD, [first.cert, second.cert], 7);

  it("jwks round trip keeps authorities", () => {
    const parsed = TrustBundle.fromJwks(TD, bundle.toJwks());
    assert.deepEqual(parsed.fingerprints(), bundle.fingerprints());
  });

  it("jwks round trip keeps sequence", () => {
    assert.equal(TrustBundle.fromJwks(TD, bundle.toJwks()).sequence, 7);
  });

  it("jwks entry shape", () => {
    const document = JSON.parse(bundle.toJwks()) as { keys: Array<Record<string, unknown>>; spiffe_sequence: number };
    const key = document.keys[0];
    assert.equal(key.use, "x509-svid");
    assert.equal(key.kty, "EC");
    assert.equal(key.crv, "P-256");
    assert.equal(typeof key.x, "string");
    assert.equal(typeof key.y, "string");
    assert.deepEqual(key.x5c, [first.certDer.toString("base64")]);
    assert.equal(key.kid, undefined);
    assert.equal(document.spiffe_sequence, 7);
  });

  it("pem round trip", () => {
    assert.deepEqual(TrustBundle.fromPem(TD, bundle.toPem(), 3).fingerprints(), bundle.fingerprints());
  });

  it("fingerprints are sha256 of der", () => {
    assert.equal(bundle.fingerprints()[0], createHash("sha256").update(first.certDer).digest("hex"));
  });

  it("duplicate authorities collapse", () => {
    assert.equal(new TrustBundle(TD, [first.cert, first.cert], 1).authorities.length, 1);
  });

  it("constructor rejects bad trust domain", () => {
    assert.equal(errorCode(() => new TrustBundle("Bad Domain", [], 1)), "ERR_SPIFFE_ID_INVALID");
  });

  it("constructor rejects negative sequence", () => {
    assert.throws(() => new TrustBundle(TD, [], -1), TypeError);
  });

  it("fromJwks ignores jwt-svid keys", () => {
    const json = JSON.stringify({ keys: [{ use: "jwt-svid", kty: "EC", crv: "P-256", x: "a", y: "b", kid: "k" }], spiffe_sequence: 1 });
    assert.equal(TrustBundle.fromJwks(TD, json).authorities.length, 0);
  });

  it("fromJwks ignores entry without x5c", () => {
    const json = JSON.stringify({ keys: [{ use: "x509-svid", kty: "EC", crv: "P-256", x: "a", y: "b" }] });
    assert.equal(TrustBundle.fromJwks(TD, json).authorities.length, 0);
  });

  it("fromJwks uses first x5c value", () => {
    const document = JSON.parse(new TrustBundle(TD, [first.cert], 1).toJwks()) as { keys: Array<{ x5c: string[] }> };
    document.keys[0].x5c.push(second.certDer.toString("base64"));
    assert.deepEqual(TrustBundle.fromJwks(TD, JSON.stringify(document)).fingerprints(), [createHash("sha256").update(first.certDer).digest("hex")]);
  });

  it("fromJwks missing sequence is zero", () => {
    assert.equal(TrustBundle.fromJwks(TD, JSON.stringify({ keys: [] })).sequence, 0);
  });

  it("fromJwks reads fixture ca", () => {
    const fixture = new TrustBundle("tenant-a.example", [fixtureCa("ca-a.pem")], 2);
    assert.equal(TrustBundle.fromJwks("tenant-a.example", fixture.toJwks()).authorities[0].raw.equals(fixtureCa("ca-a.pem").raw), true);
  });

  describe("fromJwks rejects", () => {
    const valid = JSON.parse(new TrustBundle(TD, [first.cert], 1).toJwks()) as { keys: Array<Record<string, unknown>> };
    const withKey = (changes: Record<string, unknown>) => JSON.stringify({ keys: [{ ...valid.keys[0], ...changes }], spiffe_sequence: 1 });
    const cases: Array<[string, string, string]> = [
      ["not json", "{", "not valid JSON"],
      ["array document", "[]", "JSON object"],
      ["missing keys", "{}", '"keys" is missing'],
      ["keys not array", '{"keys":{}}', '"keys" is missing or not an array'],
      ["negative sequence", '{"keys":[],"spiffe_sequence":-1}', "spiffe_sequence"],
      ["fractional sequence", '{"keys":[],"spiffe_sequence":1.5}', "spiffe_sequence"],
      ["string sequence", '{"keys":[],"spiffe_sequence":"1"}', "spiffe_sequence"],
      ["key not object", '{"keys":[1]}', "keys[0] is not a JSON object"],
      ["key without use", '{"keys":[{"kty":"EC"}]}', "keys[0].use"],
      ["x5c not array", withKey({ x5c: "abc" }), "keys[0].x5c"],
      ["x5c not base64", withKey({ x5c: ["!!!"] }), "keys[0].x5c"],
      ["x5c not certificate", withKey({ x5c: ["AAAA"] }), "not a DER X.509 certificate"],
      ["x mismatch", withKey({ x: "AAAA" }), "keys[0].x does not match"],
      ["kty mismatch", withKey({ kty: "RSA" }), "keys[0].kty does not match"],
    ];
    for (const [name, json, detail] of cases) {
      it(name, () => {
        const err = caught(() => TrustBundle.fromJwks(TD, json));
        assert.equal(err.code, "ERR_BUNDLE_INVALID");
        assert.ok(err.message.includes(detail), `message ${JSON.stringify(err.message)} should contain ${JSON.stringify(detail)}`);
      });
    }
  });

  it("fromPem rejects text without blocks", () => {
    assert.equal(errorCode(() => TrustBundle.fromPem(TD, "hello", 1)), "ERR_BUNDLE_INVALID");
  });

  it("fromPem rejects non certificate block", () => {
    assert.equal(errorCode(() => TrustBundle.fromPem(TD, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 1)), "ERR_BUNDLE_INVALID");
  });
});

describe("BundleSet", () => {
  const a = new TrustBundle("a.example", [makeCa("a.example").cert], 1);
  const b = new TrustBundle("b.example", [makeCa("b.example").cert], 1);

  it("get returns set bundle", () => {
    const set = new BundleSet();
    set.set(a);
    assert.equal(set.get("a.example"), a);
  });

  it("get unknown is undefined", () => {
    assert.equal(new BundleSet().get("a.example"), undefined);
  });

  it("set replaces same trust domain", () => {
    const set = new BundleSet();
    set.set(a);
    const newer = new TrustBundle("a.example", [], 2);
    set.set(newer);
    assert.equal(set.get("a.example")?.sequence, 2);
  });

  it("delete removes", () => {
    const set = new BundleSet();
    set.set(a);
    set.delete("a.example");
    assert.equal(set.all().length, 0);
  });

  it("allAuthoritiesPem holds every authority", () => {
    const set = new BundleSet();
    set.set(a);
    set.set(b);
    assert.equal(pemToDerList(set.allAuthoritiesPem()).length, 2);
  });
});

describe("pem", () => {
  it("pemToDerList skips text between blocks", () => {
    const ca = makeCa();
    const pem = `subject=CN=x\n${new TrustBundle(TD, [ca.cert], 1).toPem()}trailing text\n`;
    assert.equal(pemToDerList(pem)[0].equals(ca.certDer), true);
  });

  it("pemToDerList rejects bad base64", () => {
    assert.equal(errorCode(() => pemToDerList("-----BEGIN X-----\n@@@@\n-----END X-----\n")), "ERR_PEM_INVALID");
  });
});
