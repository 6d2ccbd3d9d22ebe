import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { Deadline } from "@grpc/grpc-js";
import { isCallAbortError, openCallScope } from "../../services/core/grpc/index.js";

class FakeCall extends EventEmitter {
  cancelled = false;

  constructor(private readonly deadline: Deadline) {
    super();
  }

  getDeadline(): Deadline {
    return this.deadline;
  }
}

function abortCode(signal: AbortSignal): string | undefined {
  return isCallAbortError(signal.reason) ? signal.reason.code : undefined;
}

describe("openCallScope", () => {
  it("reports no deadline as undefined", () => {
    const scope = openCallScope(new FakeCall(Infinity));
    assert.equal(scope.deadline, undefined);
    assert.equal(scope.signal.aborted, false);
    scope.dispose();
  });

  it("aborts on cancelled", () => {
    const call = new FakeCall(Infinity);
    const scope = openCallScope(call);
    call.emit("cancelled", "cancelled");
    assert.equal(abortCode(scope.signal), "ERR_RPC_CANCELLED");
    scope.dispose();
  });

  it("aborts at a passed deadline", () => {
    const now = new Date("2026-01-01T00:00:10Z");
    const scope = openCallScope(new FakeCall(new Date("2026-01-01T00:00:00Z")), () => now);
    assert.equal(abortCode(scope.signal), "ERR_RPC_DEADLINE_EXCEEDED");
    scope.dispose();
  });

  it("aborts when the deadline timer fires", async () => {
    const scope = openCallScope(new FakeCall(Date.now() + 20));
    await new Promise<void>((resolve) => scope.signal.addEventListener("abort", () => resolve(), { once: true }));
    assert.equal(abortCode(scope.signal), "ERR_RPC_DEADLINE_EXCEEDED");
    scope.dispose();
  });

  it("stops listening after dispose", () => {
    const call = new FakeCall(Infinity);
    const scope = openCallScope(call);
    scope.dispose();
    call.emit("cancelled", "cancelled");
    assert.equal(scope.signal.aborted, false);
  });
});
