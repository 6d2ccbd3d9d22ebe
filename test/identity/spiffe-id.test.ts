import assert from "node:assert/strict";
import { status } from "@grpc/grpc-js";
import { SpiffeId, validateTrustDomain } from "../../services/core/identity/index.js";
import { caught, errorCode } from "./helpers.js";

// Valid and invalid IDs from the rules of the SPIFFE-ID specification, sections 2.1 to 2.3.
const VALID: Array<[string, string, string]> = [
  ["spiffe://example.org", "example.org", ""],
  ["spiffe://example.org/path", "example.org", "/path"],
  ["spiffe://example.org/path/element", "example.org", "/path/element"],
  ["spiffe://a.b-c_d.0/A-Z.a_z-0.9", "a.b-c_d.0", "/A-Z.a_z-0.9"],
  ["spiffe://example.org/.../x", "example.org", "/.../x"],
  ["spiffe://td/.hidden/..x", "td", "/.hidden/..x"],
];

const INVALID: Array<[string, string, string]> = [
  ["empty", "", "cannot be empty"],
  ["no scheme", "example.org/path", "scheme"],
  ["uppercase scheme", "SPIFFE://example.org/path", "scheme"],
  ["other scheme", "https://example.org/path", "scheme"],
  ["single slash after scheme", "spiffe:/example.org/path", "scheme"],
  ["missing trust domain", "spiffe://", "trust domain is missing"],
  ["missing trust domain with path", "spiffe:///path", "trust domain is missing"],
  ["uppercase trust domain", "spiffe://Example.org/path", "trust domain characters"],
  ["port", "spiffe://example.org:8080/path", "trust domain characters"],
  ["userinfo", "spiffe://user:pass@example.org/path", "trust domain characters"],
  ["query", "spiffe://example.org/path?query=1", "path segment characters"],
  ["fragment", "spiffe://example.org/path#frag", "path segment characters"],
  ["percent encoding", "spiffe://example.org/pa%20th", "path segment characters"],
  ["space in path", "spiffe://example.org/pa th", "path segment characters"],
  ["space in trust domain", "spiffe://exa mple.org/path", "trust domain characters"],
  ["root trailing slash", "spiffe://example.org/", "trailing slash"],
  ["path trailing slash", "spiffe://example.org/path/", "trailing slash"],
  ["empty segment", "spiffe://example.org//path", "empty segments"],
  ["dot segment", "spiffe://example.org/./path", '"." or ".."'],
  ["dot-dot segment", "spiffe://example.org/path/..", '"." or ".."'],
  ["too long", `spiffe://example.org/${"a".repeat(2048)}`, "longer than 2048 bytes"],
  ["trust domain too long", `spiffe://${"a".repeat(256)}/path`, "longer than 255 bytes"],
];

describe("SpiffeId", () => {
  describe("parse valid", () => {
    for (const [text, trustDomain, path] of VALID) {
      it(text, () => {
        const id = SpiffeId.parse(text);
        assert.equal(id.trustDomain, trustDomain);
        assert.equal(id.path, path);
        assert.equal(id.toString(), text);
      });
    }
  });

  describe("parse invalid", () => {
    for (const [name, text, rule] of INVALID) {
      it(name, () => {
        const err = caught(() => SpiffeId.parse(text));
        assert.equal(err.code, "ERR_SPIFFE_ID_INVALID");
        assert.ok(err.message.includes(rule), `message ${JSON.stringify(err.message)} should name the rule "${rule}"`);
      });
    }
  });

  it("error names value", () => {
    const err = caught(() => SpiffeId.parse("spiffe://example.org/path/"));
    assert.ok(err.message.includes('"spiffe://example.org/path/"'));
  });

  it("error status invalid argument", () => {
    assert.equal(caught(() => SpiffeId.parse("")).status, status.INVALID_ARGUMENT);
  });

  it("long value shortened in message", () => {
    const err = caught(() => SpiffeId.parse(`spiffe://example.org/${"a".repeat(3000)}`));
    assert.ok(err.message.length < 400);
  });

  it("max length accepted", () => {
    const prefix = "spiffe://example.org/";
    const text = prefix + "a".repeat(2048 - prefix.length);
    assert.equal(SpiffeId.parse(text).toString().length, 2048);
  });

  it("fromParts builds id", () => {
    assert.equal(SpiffeId.fromParts("example.org", "/client/site-1").toString(), "spiffe://example.org/client/site-1");
  });

  it("fromParts root path", () => {
    assert.equal(SpiffeId.fromParts("example.org", "").toString(), "spiffe://example.org");
  });

  it("fromParts rejects relative path", () => {
    assert.equal(errorCode(() => SpiffeId.fromParts("example.org", "client")), "ERR_SPIFFE_ID_INVALID");
  });

  it("fromParts rejects bad trust domain", () => {
    assert.equal(errorCode(() => SpiffeId.fromParts("Example.org", "/x")), "ERR_SPIFFE_ID_INVALID");
  });

  it("isMemberOf", () => {
    const id = SpiffeId.parse("spiffe://acme.example/client");
    assert.equal(id.isMemberOf("acme.example"), true);
    assert.equal(id.isMemberOf("other.example"), false);
    assert.equal(id.isMemberOf("acme.example.evil"), false);
  });

  describe("hasPathPrefix", () => {
    const id = SpiffeId.parse("spiffe://acme.example/client/site-1/db");
    const cases: Array<[string, string, boolean]> = [
      ["/client/site-1", "spiffe://acme.example/client/site-1", true],
      ["/client/site-1", "spiffe://acme.example/client/site-1/x", true],
      ["/client/site-1", "spiffe://acme.example/client/site-10", false],
      ["/client/site-1", "spiffe://acme.example/client", false],
      ["/client/site-1/", "spiffe://acme.example/client/site-1/x", true],
      ["/", "spiffe://acme.example/anything", true],
      ["", "spiffe://acme.example", true],
    ];
    for (const [prefix, text, expected] of cases) {
      it(`${JSON.stringify(prefix)} on ${text}`, () => {
        assert.equal(SpiffeId.parse(text).hasPathPrefix(prefix), expected);
      });
    }
    it("rejects relative prefix", () => {
      assert.throws(() => id.hasPathPrefix("client"), TypeError);
    });
  });

  it("equals", () => {
    assert.equal(SpiffeId.parse("spiffe://a/b").equals(SpiffeId.fromParts("a", "/b")), true);
  });
});

describe("validateTrustDomain", () => {
  it("accepts bare name", () => {
    assert.equal(validateTrustDomain("acme.tenants.operator.example"), "acme.tenants.operator.example");
  });

  it("accepts trust domain id", () => {
    assert.equal(validateTrustDomain("spiffe://acme.example"), "acme.example");
  });

  it("rejects id with path", () => {
    assert.equal(errorCode(() => validateTrustDomain("spiffe://acme.example/x")), "ERR_SPIFFE_ID_INVALID");
  });

  for (const bad of ["", "Acme.example", "acme.example:443", "acme/example", "user@acme"]) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      assert.equal(errorCode(() => validateTrustDomain(bad)), "ERR_SPIFFE_ID_INVALID");
    });
  }
});
