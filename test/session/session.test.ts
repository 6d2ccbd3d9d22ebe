import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Role } from "../../gen/ewii/tunnel/v1/tunnel.js";
import type { SealedFrame, SessionMessage } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { nativeSuite, nobleSuite } from "../../services/core/crypto/index.js";
import { Session } from "../../services/core/session/index.js";
import { createIdentities, establishPair, TestClock } from "./fixtures.js";
import type { Identities } from "./fixtures.js";

const MARKER = "EWII-PLAINTEXT-MARKER-7f3a";

function rowsMessage(text: string): SessionMessage {
  return { rows: { requestId: Buffer.alloc(16, 1), rows: [{ values: [{ stringValue: text }] }] } };
}

function textOf(message: SessionMessage): string | undefined {
  return message.rows?.rows[0]?.values[0]?.stringValue;
}

function copyFrame(frame: SealedFrame): SealedFrame {
  return { ...frame, sessionId: Buffer.from(frame.sessionId), ciphertext: Buffer.from(frame.ciphertext) };
}

describe("session frames", () => {
  let ids: Identities;

  before(async () => {
    ids = await createIdentities();
  });

  it("hides marker plaintext", () => {
    const { hub } = establishPair(ids);
    const frame = hub.seal(rowsMessage(MARKER));
    assert.equal(Buffer.from(frame.ciphertext).includes(MARKER), false);
  });

  it("opens sealed rows", () => {
    const { hub, client } = establishPair(ids);
    assert.equal(textOf(client.open(hub.seal(rowsMessage(MARKER)))), MARKER);
  });

  it("rejects tampered ciphertext", () => {
    const { hub, client } = establishPair(ids);
    const frame = copyFrame(hub.seal(rowsMessage(MARKER)));
    frame.ciphertext[3] ^= 0x01;
    assert.throws(() => client.open(frame), { code: "ERR_FRAME_AUTH_FAILED" });
    assert.equal(client.stats.rejected.authFailed, 1);
  });

  it("rejects tampered sequence", () => {
    const { hub, client } = establishPair(ids);
    hub.seal(rowsMessage("first"));
    const frame = hub.seal(rowsMessage("second"));
    assert.throws(() => client.open({ ...frame, sequence: 0n }), { code: "ERR_FRAME_AUTH_FAILED" });
  });

  it("accepts frame after failed forgery", () => {
    const { hub, client } = establishPair(ids);
    const frame = hub.seal(rowsMessage(MARKER));
    const forged = copyFrame(frame);
    forged.ciphertext[0] ^= 0xff;
    assert.throws(() => client.open(forged), { code: "ERR_FRAME_AUTH_FAILED" });
    assert.equal(textOf(client.open(frame)), MARKER);
  });

  it("rejects replayed frame", () => {
    const { hub, client } = establishPair(ids);
    const frame = hub.seal(rowsMessage(MARKER));
    client.open(frame);
    assert.throws(() => client.open(frame), { code: "ERR_FRAME_REPLAYED" });
    assert.equal(client.stats.rejected.replayed, 1);
  });

  it("rejects frame older than window", () => {
    const { hub, client } = establishPair(ids, { limits: { replayWindowSize: 1024 } });
    const old = hub.seal(rowsMessage("old"));
    for (let i = 0; i < 1024; i++) client.open(hub.seal(rowsMessage(`n${i}`)));
    assert.throws(() => client.open(old), { code: "ERR_FRAME_TOO_OLD" });
    assert.equal(client.stats.rejected.tooOld, 1);
  });

  it("accepts reordered frames once", () => {
    const { hub, client } = establishPair(ids);
    const frames = Array.from({ length: 8 }, (_, i) => hub.seal(rowsMessage(`r${i}`)));
    const order = [3, 0, 7, 1, 6, 2, 5, 4];
    const received = order.map((i) => textOf(client.open(frames[i])));
    assert.deepEqual(received, order.map((i) => `r${i}`));
    for (const i of order) assert.throws(() => client.open(frames[i]), { code: "ERR_FRAME_REPLAYED" });
  });

  it("rejects frame of other session", () => {
    const first = establishPair(ids);
    const second = establishPair(ids);
    assert.throws(() => second.client.open(first.hub.seal(rowsMessage(MARKER))), { code: "ERR_FRAME_WRONG_SESSION" });
    assert.equal(second.client.stats.rejected.wrongSession, 1);
  });

  it("rejects own frame reflected back", () => {
    const { hub } = establishPair(ids);
    assert.throws(() => hub.open(hub.seal(rowsMessage(MARKER))), { code: "ERR_FRAME_WRONG_DIRECTION" });
  });

  it("rejects relabeled direction", () => {
    const { client } = establishPair(ids);
    const frame = client.seal(rowsMessage(MARKER));
    assert.throws(() => client.open({ ...frame, direction: Role.ROLE_HUB }), { code: "ERR_FRAME_AUTH_FAILED" });
  });

  it("rejects oversized payload on seal", () => {
    const { hub } = establishPair(ids, { limits: { maxFrameBytes: 1024 } });
    assert.throws(() => hub.sealBytes(new Uint8Array(1025)), { code: "ERR_FRAME_TOO_LARGE" });
  });

  it("rejects oversized frame on open", () => {
    const { hub, client } = establishPair(ids, { limits: { maxFrameBytes: 1024 } });
    const frame = hub.sealBytes(new Uint8Array(1024));
    assert.throws(() => client.openBytes({ ...frame, ciphertext: Buffer.alloc(1024 + 17) }), { code: "ERR_FRAME_TOO_LARGE" });
  });

  it("rejects truncated tag", () => {
    const { hub, client } = establishPair(ids);
    const frame = hub.sealBytes(new Uint8Array(4));
    assert.throws(() => client.openBytes({ ...frame, tag: frame.tag.subarray(0, 10) }), { code: "ERR_FRAME_MALFORMED" });
  });

  it("rejects truncated ciphertext", () => {
    const { hub, client } = establishPair(ids);
    const frame = hub.sealBytes(new Uint8Array(32));
    assert.throws(() => client.openBytes({ ...frame, ciphertext: frame.ciphertext.subarray(0, 10) }), { code: "ERR_FRAME_AUTH_FAILED" });
  });

  it("rejects use after close", () => {
    const { hub } = establishPair(ids);
    hub.close();
    assert.throws(() => hub.sealBytes(new Uint8Array(1)), { code: "ERR_SESSION_CLOSED" });
  });
});

describe("session rekey", () => {
  let ids: Identities;

  before(async () => {
    ids = await createIdentities();
  });

  it("rekeys by frame count", () => {
    const { hub, client } = establishPair(ids, { limits: { rekeyAfterFrames: 4 } });
    const epochs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const frame = hub.seal(rowsMessage(`f${i}`));
      epochs.push(frame.keyEpoch);
      assert.equal(textOf(client.open(frame)), `f${i}`);
    }
    assert.deepEqual(epochs, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
    assert.equal(client.stats.receiveEpoch, 2);
  });

  it("rekeys by time", () => {
    const clock = new TestClock();
    const { hub, client } = establishPair(ids, { hubClock: clock });
    client.open(hub.seal(rowsMessage("before")));
    clock.advance(10 * 60 * 1000);
    const frame = hub.seal(rowsMessage("after"));
    assert.equal(frame.keyEpoch, 1);
    assert.equal(textOf(client.open(frame)), "after");
  });

  it("opens previous epoch within grace", () => {
    const clock = new TestClock();
    const { hub, client } = establishPair(ids, { hubClock: clock, limits: { rekeyAfterFrames: 2 } });
    const late = [hub.seal(rowsMessage("e0-a")), hub.seal(rowsMessage("e0-b"))];
    client.open(hub.seal(rowsMessage("e1")));
    clock.advance(29_000);
    assert.equal(textOf(client.open(late[1])), "e0-b");
  });

  it("rejects previous epoch after grace", () => {
    const clock = new TestClock();
    const { hub, client } = establishPair(ids, { hubClock: clock, limits: { rekeyAfterFrames: 2 } });
    const late = [hub.seal(rowsMessage("e0-a")), hub.seal(rowsMessage("e0-b"))];
    client.open(hub.seal(rowsMessage("e1")));
    clock.advance(30_001);
    assert.throws(() => client.open(late[0]), { code: "ERR_FRAME_WRONG_EPOCH" });
    assert.equal(client.stats.rejected.wrongEpoch, 1);
  });

  it("rejects epoch skipped ahead", () => {
    const { hub, client } = establishPair(ids);
    const frame = hub.seal(rowsMessage(MARKER));
    assert.throws(() => client.open({ ...frame, keyEpoch: 2 }), { code: "ERR_FRAME_WRONG_EPOCH" });
  });

  it("ignores forged next epoch", () => {
    const { hub, client } = establishPair(ids);
    const frame = hub.seal(rowsMessage(MARKER));
    assert.throws(() => client.open({ ...frame, keyEpoch: 1 }), { code: "ERR_FRAME_AUTH_FAILED" });
    assert.equal(client.stats.receiveEpoch, 0);
    assert.equal(textOf(client.open(frame)), MARKER);
  });
});

describe("session suite cross-check", () => {
  let ids: Identities;

  before(async () => {
    ids = await createIdentities();
  });

  it("native and noble seal identical frames", () => {
    // Same keys on both sides, so every frame must be byte-identical.
    const keys = { id: randomBytes(16), send: randomBytes(32), receive: randomBytes(32) };
    const make = (suite: typeof nativeSuite): Session =>
      new Session({ id: keys.id, role: Role.ROLE_HUB, sendKey: Uint8Array.from(keys.send), receiveKey: Uint8Array.from(keys.receive), peerSpiffeId: ids.client.spiffeId, peerSerial: "01", suite, limits: { rekeyAfterFrames: 16 } });
    const native = make(nativeSuite);
    const noble = make(nobleSuite);
    for (let i = 0; i < 40; i++) {
      const payload = randomBytes(i * 97);
      assert.deepEqual(Buffer.from(native.sealBytes(payload).ciphertext), Buffer.from(noble.sealBytes(payload).ciphertext), `frame ${i}`);
    }
  });

  it("native hub and noble client exchange frames", () => {
    const { hub, client } = establishPair(ids, { clientSuite: nobleSuite, limits: { rekeyAfterFrames: 8 } });
    for (let i = 0; i < 24; i++) {
      assert.equal(textOf(client.open(hub.seal(rowsMessage(`down${i}`)))), `down${i}`);
      assert.equal(textOf(hub.open(client.seal(rowsMessage(`up${i}`)))), `up${i}`);
    }
  });
});
