import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { nativeSuite, nobleSuite } from "../../services/core/crypto/index.js";
import type { CryptoSuite } from "../../services/core/crypto/index.js";

interface AeadVector { name: string; key: string; nonce: string; aad: string; plaintext: string; ciphertext: string; tag: string }
interface HkdfVector { name: string; ikm: string; salt: string; info: string; length: number; okm: string }
interface X25519Vectors {
  scalarMult: { name: string; scalar: string; u: string; output: string }[];
  iterated: { start: string; after1: string; after1000: string };
  diffieHellman: { alicePrivate: string; alicePublic: string; bobPrivate: string; bobPublic: string; shared: string };
  lowOrder: { scalar: string; u: string[] };
}

function loadVectors<T>(file: string): T {
  return JSON.parse(readFileSync(new URL(`../vectors/${file}`, import.meta.url), "utf8")) as T;
}

const aead = loadVectors<{ vectors: AeadVector[] }>("rfc8439-chacha20-poly1305.json");
const hkdf = loadVectors<{ vectors: HkdfVector[] }>("rfc5869-hkdf-sha256.json");
const x25519 = loadVectors<X25519Vectors>("rfc7748-x25519.json");

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "hex"));
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

/** RFC 7748 section 5.2: the scalar for the next round is the previous output. */
function iterateX25519(suite: CryptoSuite, start: string, rounds: number): string {
  let k = hex(start);
  let u = hex(start);
  for (let i = 0; i < rounds; i++) {
    const next = suite.x25519SharedSecret(k, u);
    u = k;
    k = next;
  }
  return toHex(k);
}

for (const suite of [nativeSuite, nobleSuite]) {
  describe(`${suite.name} suite vectors`, () => {
    for (const v of aead.vectors) {
      it(`seals ${v.name}`, () => {
        const sealed = suite.aeadSeal(hex(v.key), hex(v.nonce), hex(v.plaintext), hex(v.aad));
        assert.equal(toHex(sealed), v.ciphertext + v.tag);
      });

      it(`opens ${v.name}`, () => {
        const opened = suite.aeadOpen(hex(v.key), hex(v.nonce), hex(v.ciphertext + v.tag), hex(v.aad));
        assert.equal(toHex(opened), v.plaintext);
      });

      it(`rejects flipped tag ${v.name}`, () => {
        const sealed = hex(v.ciphertext + v.tag);
        sealed[sealed.length - 1] ^= 0x01;
        assert.throws(() => suite.aeadOpen(hex(v.key), hex(v.nonce), sealed, hex(v.aad)), { code: "ERR_CRYPTO_AUTH_FAILED" });
      });

      it(`rejects changed aad ${v.name}`, () => {
        const aad = hex(v.aad);
        aad[0] ^= 0x80;
        assert.throws(() => suite.aeadOpen(hex(v.key), hex(v.nonce), hex(v.ciphertext + v.tag), aad), { code: "ERR_CRYPTO_AUTH_FAILED" });
      });
    }

    it("rejects sealed input shorter than tag", () => {
      assert.throws(() => suite.aeadOpen(new Uint8Array(32), new Uint8Array(12), new Uint8Array(15), new Uint8Array(0)), { code: "ERR_CRYPTO_AUTH_FAILED" });
    });

    it("rejects wrong key length", () => {
      assert.throws(() => suite.aeadSeal(new Uint8Array(31), new Uint8Array(12), new Uint8Array(1), new Uint8Array(0)), TypeError);
    });

    for (const v of hkdf.vectors) {
      it(`derives ${v.name}`, () => {
        assert.equal(toHex(suite.hkdfSha256(hex(v.ikm), hex(v.salt), hex(v.info), v.length)), v.okm);
      });
    }

    it("rejects oversized hkdf length", () => {
      assert.throws(() => suite.hkdfSha256(new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), 255 * 32 + 1), TypeError);
    });

    for (const v of x25519.scalarMult) {
      it(`multiplies ${v.name}`, () => {
        assert.equal(toHex(suite.x25519SharedSecret(hex(v.scalar), hex(v.u))), v.output);
      });
    }

    it("iterates rfc7748 once", () => {
      assert.equal(iterateX25519(suite, x25519.iterated.start, 1), x25519.iterated.after1);
    });

    it("iterates rfc7748 1000 times", function () {
      this.timeout(60_000);
      assert.equal(iterateX25519(suite, x25519.iterated.start, 1000), x25519.iterated.after1000);
    });

    it("agrees rfc7748 6.1 alice side", () => {
      const dh = x25519.diffieHellman;
      assert.equal(toHex(suite.x25519SharedSecret(hex(dh.alicePrivate), hex(dh.bobPublic))), dh.shared);
    });

    it("agrees rfc7748 6.1 bob side", () => {
      const dh = x25519.diffieHellman;
      assert.equal(toHex(suite.x25519SharedSecret(hex(dh.bobPrivate), hex(dh.alicePublic))), dh.shared);
    });

    for (const u of x25519.lowOrder.u) {
      it(`rejects low-order point ${u.slice(0, 8)}`, () => {
        assert.throws(() => suite.x25519SharedSecret(hex(x25519.lowOrder.scalar), hex(u)), { code: "ERR_CRYPTO_X25519_LOW_ORDER" });
      });
    }

    it("generates 32-byte key pairs", () => {
      const pair = suite.x25519GenerateKeyPair();
      assert.equal(pair.privateKey.length, 32);
      assert.equal(pair.publicKey.length, 32);
    });
  });
}
