import type { RevocationRecord } from "./store.js";

/**
 * Fans a committed revocation out to relays and hubs. `publish` runs after
 * the revocation is persisted; a failure is logged and does not undo the
 * revocation, because subscribers catch up with ListRevocations.
 */
export interface RevocationPublisher {
  publish(revocation: RevocationRecord): Promise<void>;
}

/** A publisher that sends nothing; subscribers rely on polling ListRevocations. */
export const noopRevocationPublisher: RevocationPublisher = {
  publish: async () => {},
};
