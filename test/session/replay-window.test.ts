import assert from "node:assert/strict";
import { ReplayWindow } from "../../services/core/session/index.js";

describe("replay window", () => {
  it("accepts first sequence", () => {
    assert.equal(new ReplayWindow().check(0n), "ok");
  });

  it("flags duplicate", () => {
    const window = new ReplayWindow();
    window.accept(5n);
    assert.equal(window.check(5n), "duplicate");
    assert.equal(window.stats.duplicates, 1);
  });

  it("flags sequence below window", () => {
    const window = new ReplayWindow(1024);
    window.accept(2000n);
    assert.equal(window.check(976n), "too_old");
    assert.equal(window.check(977n), "ok");
    assert.equal(window.stats.tooOld, 1);
  });

  it("accepts gaps once", () => {
    const window = new ReplayWindow(1024);
    window.accept(10n);
    window.accept(3n);
    assert.equal(window.check(3n), "duplicate");
    assert.equal(window.check(4n), "ok");
  });

  it("clears bits on large jump", () => {
    const window = new ReplayWindow(1024);
    for (let i = 0n; i < 64n; i++) window.accept(i);
    window.accept(10_000n);
    assert.equal(window.check(9_000n), "ok");
    assert.equal(window.check(10_000n), "duplicate");
  });

  it("clears reused blocks on slide", () => {
    const window = new ReplayWindow(1024);
    window.accept(1n);
    window.accept(1056n + 1n);
    // 1057 maps to the bitmap slot that 1 used; 1 itself is now too old.
    assert.equal(window.check(1057n - 1023n), "ok");
    assert.equal(window.check(1n), "too_old");
  });

  it("handles 64-bit sequences", () => {
    const window = new ReplayWindow();
    const top = 2n ** 64n - 1n;
    window.accept(top);
    assert.equal(window.check(top), "duplicate");
    assert.equal(window.check(top - 1n), "ok");
  });

  it("rejects accept of duplicate", () => {
    const window = new ReplayWindow();
    window.accept(1n);
    assert.throws(() => window.accept(1n), TypeError);
  });

  it("rejects small size", () => {
    assert.throws(() => new ReplayWindow(512), TypeError);
  });
});
