import type { Revocation } from "../../../gen/ewii/ca/v1/ca.js";
import { NOT_BEFORE_BACKDATE_MS } from "../identity/index.js";

/** The certificate facts a deny-set check needs about a peer. */
export interface DenyCheckSubject {
  spiffeId: string;
  trustDomain: string;
  serial: string;
  /** Start of the certificate's validity. SVIDs issued after a SPIFFE ID, prefix or tenant revocation stay valid. */
  notBefore?: Date;
}

interface Entry {
  sequence: number;
  kind: "spiffe_id" | "serial" | "path_prefix" | "tenant";
  value: string;
  trustDomain: string;
  revokedAt: Date;
  expiresAt: Date;
}

/**
 * The set of revoked identities and certificates a relay or hub enforces,
 * built from the CA's sequenced revocation log. Entries are applied in
 * sequence order and dropped once every certificate they cover has expired.
 */
export class DenySet {
  private readonly bySerial = new Map<string, Entry>();
  private readonly bySpiffeId = new Map<string, Entry>();
  private readonly byTrustDomain = new Map<string, Entry>();
  private readonly prefixes: Entry[] = [];
  private appliedSequence = 0;

  /** Highest revocation sequence applied. */
  get sequence(): number {
    return this.appliedSequence;
  }

  get size(): number {
    return this.bySerial.size + this.bySpiffeId.size + this.byTrustDomain.size + this.prefixes.length;
  }

  /**
   * Applies one revocation. Returns false for a sequence already applied, so
   * a duplicate delivery changes nothing.
   */
  apply(revocation: Revocation): boolean {
    const sequence = Number(revocation.sequence);
    if (sequence <= this.appliedSequence) return false;
    const entry = toEntry(revocation);
    this.appliedSequence = sequence;
    if (entry === undefined) return true;

    switch (entry.kind) {
      case "serial":
        this.bySerial.set(entry.value, entry);
        break;
      case "spiffe_id":
        this.bySpiffeId.set(entry.value, entry);
        break;
      case "tenant":
        this.byTrustDomain.set(entry.trustDomain, entry);
        break;
      case "path_prefix":
        this.prefixes.push(entry);
        break;
    }
    return true;
  }

  /** Returns the sequence of the revocation that covers the subject, or undefined. */
  match(subject: DenyCheckSubject): number | undefined {
    const serialEntry = this.bySerial.get(subject.serial.toLowerCase());
    if (serialEntry !== undefined) return serialEntry.sequence;

    const tenantEntry = this.byTrustDomain.get(subject.trustDomain);
    if (tenantEntry !== undefined && issuedBefore(subject, tenantEntry)) return tenantEntry.sequence;

    const idEntry = this.bySpiffeId.get(subject.spiffeId);
    if (idEntry !== undefined && issuedBefore(subject, idEntry)) return idEntry.sequence;

    for (const prefix of this.prefixes) {
      if (isUnderPrefix(subject.spiffeId, prefix.value) && issuedBefore(subject, prefix)) return prefix.sequence;
    }
    return undefined;
  }

  /** Drops entries whose covered certificates have all expired; returns how many. */
  prune(now: Date): number {
    let removed = 0;
    for (const map of [this.bySerial, this.bySpiffeId, this.byTrustDomain]) {
      for (const [key, entry] of map) {
        if (entry.expiresAt <= now) {
          map.delete(key);
          removed++;
        }
      }
    }
    for (let i = this.prefixes.length - 1; i >= 0; i--) {
      if (this.prefixes[i].expiresAt <= now) {
        this.prefixes.splice(i, 1);
        removed++;
      }
    }
    return removed;
  }
}

function toEntry(revocation: Revocation): Entry | undefined {
  const target = revocation.target;
  if (target === undefined) return undefined;
  const base = {
    sequence: Number(revocation.sequence),
    trustDomain: revocation.trustDomain,
    revokedAt: revocation.revokedAt ?? new Date(0),
    expiresAt: revocation.expiresAt ?? new Date(8640000000000000),
  };
  if (target.serial !== undefined) return { ...base, kind: "serial", value: target.serial.toLowerCase() };
  if (target.spiffeId !== undefined) return { ...base, kind: "spiffe_id", value: target.spiffeId };
  if (target.pathPrefix !== undefined) return { ...base, kind: "path_prefix", value: target.pathPrefix };
  if (target.tenant !== undefined) return { ...base, kind: "tenant", value: target.tenant };
  return undefined;
}

/**
 * Tests whether the CA issued the certificate at or before the revocation,
 * the rule the CA applies to SPIFFE ID, prefix and tenant revocations. The
 * CA sets notBefore NOT_BEFORE_BACKDATE_MS before the issue time (in whole
 * seconds), so comparing notBefore alone would deny an SVID re-enrolled
 * within a minute after the revocation, which the CA reports valid.
 */
function issuedBefore(subject: DenyCheckSubject, entry: Entry): boolean {
  return subject.notBefore === undefined || subject.notBefore.getTime() + NOT_BEFORE_BACKDATE_MS <= entry.revokedAt.getTime();
}

/** Matches "spiffe://td/a/b" against prefix "spiffe://td/a" or "spiffe://td/a/" on segment boundaries. */
export function isUnderPrefix(spiffeId: string, prefix: string): boolean {
  const base = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  return spiffeId === base || spiffeId.startsWith(base + "/");
}
