import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createIssuanceBenchFixture, type IssuanceBenchFixture } from "../../services/ca/index.js";
import { createGroupCommitter, MAX_GROUP_COMMIT_SIZE } from "../../services/ca/group-commit.js";
import { errorCodeOf } from "../../services/core/errors.js";
import type { CaStore } from "../../services/ca/store.js";

/** Wraps a store so that top-level transactions (commits) are counted; nested ones are savepoints. */
function countingStore(store: CaStore): { store: CaStore; commits: () => number } {
  let depth = 0;
  let commits = 0;
  const wrapped = new Proxy(store, {
    get(target, key, receiver) {
      if (key !== "transaction") return Reflect.get(target, key, receiver) as unknown;
      return <T>(fn: () => T): T => {
        if (depth === 0) commits += 1;
        depth += 1;
        try {
          return target.transaction(fn);
        } finally {
          depth -= 1;
        }
      };
    },
  });
  return { store: wrapped, commits: () => commits };
}

describe("issuance group commit", () => {
  let dir: string;
  let fixture: IssuanceBenchFixture;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "ewii-group-commit-"));
    fixture = createIssuanceBenchFixture(join(dir, "ca"));
  });

  afterEach(() => {
    fixture.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("concurrent requests share one commit", async () => {
    const counted = countingStore(fixture.context.store);
    const committer = createGroupCommitter(counted.store);
    const work = Array.from({ length: 10 }, (_, i) => () => counted.store.transaction(() => i));

    const results = await Promise.all(work.map((fn) => committer.run(fn)));

    assert.deepEqual(results, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(counted.commits(), 1);
  });

  it("large load splits into groups", async () => {
    const counted = countingStore(fixture.context.store);
    const committer = createGroupCommitter(counted.store);

    await Promise.all(Array.from({ length: MAX_GROUP_COMMIT_SIZE + 1 }, () => committer.run(() => 0)));

    assert.equal(counted.commits(), 2);
  });

  it("failed request rolls back alone", async () => {
    const requests = [fixture.prepareEnroll(), fixture.prepareEnroll(), fixture.prepareEnroll()];
    const reused = { ...requests[2], csrDer: fixture.prepareEnroll().csrDer };

    const outcomes = await Promise.allSettled([fixture.enrollGrouped([requests[0], requests[1], requests[2]]), fixture.enrollGrouped([reused])]);

    assert.equal(outcomes[0].status, "fulfilled");
    assert.equal(outcomes[1].status, "rejected");
    assert.equal(errorCodeOf((outcomes[1] as PromiseRejectedResult).reason), "ERR_TOKEN_USED");
    const serials = (outcomes[0] as PromiseFulfilledResult<string[]>).value;
    for (const serial of serials) assert.ok(fixture.context.store.getSvid(serial) !== undefined, serial);
  });

  it("renew after grouped enroll", async () => {
    const [serial] = await fixture.enrollGrouped([fixture.prepareEnroll()]);

    const [renewed] = await fixture.renewGrouped([fixture.prepareRenew(serial)]);

    assert.notEqual(renewed, serial);
    assert.equal(fixture.context.store.getSvid(renewed)?.issuedBy, "renew");
  });
});
