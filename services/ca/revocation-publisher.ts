import type { RevocationBus } from "../core/revocation/bus.js";
import type { Revocation } from "../../gen/ewii/ca/v1/ca.js";
import { targetToMessage } from "./revocations.js";
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

/** Publishes each revocation on a bus (Redis or in-process) as an ewii.ca.v1.Revocation. */
export function busRevocationPublisher(bus: RevocationBus): RevocationPublisher {
  return {
    publish: (revocation) => bus.publish(toBusMessage(revocation)),
  };
}

function toBusMessage(revocation: RevocationRecord): Revocation {
  return {
    sequence: BigInt(revocation.sequence),
    target: targetToMessage(revocation.target),
    reason: revocation.reason,
    revokedAt: revocation.revokedAt,
    revokedBy: revocation.revokedBy,
    expiresAt: revocation.expiresAt,
    trustDomain: revocation.trustDomain,
  };
}
