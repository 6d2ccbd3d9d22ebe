import type { CaStore } from "./store.js";

/**
 * Group commit for issuance. Enroll and Renew requests that arrive in the
 * same event-loop turn run in one store transaction, each inside its own
 * savepoint, so one synchronous=FULL commit (one WAL fsync) covers the
 * whole group. Each request gets its response only after that commit returns, so
 * an SVID, its record and the consumed join token are durable before the
 * SVID leaves the CA, exactly as with one transaction per request.
 * Revocations, tenant changes and rollovers do not go through here and
 * keep their own transaction each.
 *
 * NOTE: enroll() and renew() write their "SVID enrolled" or "SVID renewed"
 * log line inside the work, before the group commits. If that commit fails,
 * every caller of the group gets the error but the log already names the
 * serials.
 */

/** Largest group committed together; bounds the latency a request waits behind others. */
export const MAX_GROUP_COMMIT_SIZE = 64;

interface Pending {
  work: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export interface GroupCommitter {
  /** Runs `work` (synchronous store code) in the next group transaction and resolves after its commit. */
  run<T>(work: () => T): Promise<T>;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export function createGroupCommitter(store: CaStore): GroupCommitter {
  let queue: Pending[] = [];
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    const group = queue.slice(0, MAX_GROUP_COMMIT_SIZE);
    queue = queue.slice(group.length);
    if (queue.length > 0) schedule();

    let outcomes: Outcome[];
    try {
      outcomes = store.transaction(() =>
        group.map((pending): Outcome => {
          try {
            // Nested store transactions are savepoints, so a failed request rolls back alone.
            return { ok: true, value: store.transaction(pending.work) };
          } catch (error: unknown) {
            return { ok: false, error };
          }
        }),
      );
    } catch (error: unknown) {
      // The commit itself failed: nothing of this group is stored.
      for (const pending of group) pending.reject(error);
      return;
    }
    group.forEach((pending, i) => {
      const outcome = outcomes[i];
      if (outcome.ok) pending.resolve(outcome.value);
      else pending.reject(outcome.error);
    });
  };

  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };

  return {
    run<T>(work: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ work, resolve: resolve as (value: unknown) => void, reject });
        schedule();
      });
    },
  };
}
