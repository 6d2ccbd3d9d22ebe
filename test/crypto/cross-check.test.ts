import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { nativeSuite, nobleSuite } from "../../services/core/crypto/index.js";

const RANDOM_ROUNDS = 64;
const MAX_RANDOM_PLAINTEXT_BYTES = 70_000;

describe("suite cross-check", () => {
  it("native seal opens with noble", () => {
    for (let i = 0; i < RANDOM_ROUNDS; i++) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const aad = randomBytes(randomInt(0, 64));
      const plaintext = randomBytes(randomInt(0, MAX_RANDOM_PLAINTEXT_BYTES));
      const sealed = nativeSuite.aeadSeal(key, nonce, plaintext, aad);
      assert.deepEqual(Buffer.from(nobleSuite.aeadOpen(key, nonce, sealed, aad)), plaintext, `round ${i}, ${plaintext.length} bytes`);
    }
  });

  it("noble seal opens with native", () => {
    for (let i = 0; i < RANDOM_ROUNDS; i++) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const aad = randomBytes(randomInt(0, 64));
      const plaintext = randomBytes(randomInt(0, MAX_RANDOM_PLAINTEXT_BYTES));
      const sealed = nobleSuite.aeadSeal(key, nonce, plaintext, aad);
      assert.deepEqual(Buffer.from(nativeSuite.aeadOpen(key, nonce, sealed, aad)), plaintext, `round ${i}, ${plaintext.length} bytes`);
    }
  });

  it("seals identical bytes in both", () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const plaintext = randomBytes(1000);
    const aad = randomBytes(29);
    assert.deepEqual(Buffer.from(nativeSuite.aeadSeal(key, nonce, plaintext, aad)), Buffer.from(nobleSuite.aeadSeal(key, nonce, plaintext, aad)));
  });

  it("x25519 agrees across suites", () => {
    const native = nativeSuite.x25519GenerateKeyPair();
    const noble = nobleSuite.x25519GenerateKeyPair();
    const fromNative = nativeSuite.x25519SharedSecret(native.privateKey, noble.publicKey);
    const fromNoble = nobleSuite.x25519SharedSecret(noble.privateKey, native.publicKey);
    assert.deepEqual(Buffer.from(fromNative), Buffer.from(fromNoble));
  });

  it("hkdf agrees across suites", () => {
    const ikm = randomBytes(32);
    const salt = randomBytes(32);
    const info = Buffer.from("ewii/1 test");
    assert.deepEqual(Buffer.from(nativeSuite.hkdfSha256(ikm, salt, info, 64)), Buffer.from(nobleSuite.hkdfSha256(ikm, salt, info, 64)));
  });
});
