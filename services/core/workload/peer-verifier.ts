import { createHash } from "node:crypto";
import { status } from "@grpc/grpc-js";
import { EwiiError } from "../errors.js";
import { verifyX509Svid, type BundleSource, type TrustBundle } from "../identity/index.js";
import type { PeerIdentity, PeerVerifier } from "../grpc/index.js";

/** Most verified peer certificates remembered by one verifier. */
export const PEER_CACHE_MAX_ENTRIES = 10_000;

interface CachedPeer {
  identity: PeerIdentity;
  notBefore: Date;
  /** The bundle the chain was verified against; a changed bundle forces a new verification. */
  bundle: TrustBundle;
}

/**
 * Creates a PeerVerifier that validates a peer's leaf as an X509-SVID
 * against the bundle of the trust domain named in its own SPIFFE ID, never
 * against another trust domain's CAs. TLS trusts the union of all bundles,
 * so this check is what keeps tenants apart.
 *
 * A full verification costs about 2.6 ms of CPU (measured on the 2-core
 * development VM), mostly certificate parsing, and every call on a
 * connection presents the same leaf. Results are therefore cached by the
 * leaf's SHA-256 for as long as the bundle of its trust domain is the same
 * object, and the validity period is checked again on every call. Revocation is
 * not cached here: callers check their deny set per call.
 */
export function createPeerVerifier(bundles: BundleSource, now: () => Date = () => new Date()): PeerVerifier {
  const cache = new Map<string, CachedPeer>();

  return (leafDer: Buffer): PeerIdentity => {
    const key = createHash("sha256").update(leafDer).digest("base64");
    const at = now();
    const cached = cache.get(key);
    if (cached !== undefined && bundles.get(cached.identity.trustDomain) === cached.bundle) {
      if (at < cached.notBefore || at >= cached.identity.notAfter) {
        cache.delete(key);
        throw new EwiiError(at < cached.notBefore ? "ERR_SVID_NOT_YET_VALID" : "ERR_SVID_EXPIRED", `certificate of ${cached.identity.spiffeId} (serial ${cached.identity.serial}) is not valid at ${at.toISOString()}; renew the SVID`, {
          status: status.UNAUTHENTICATED,
        });
      }
      return cached.identity;
    }

    const verified = verifyX509Svid([leafDer], bundles, { now: at });
    const identity: PeerIdentity = {
      spiffeId: verified.spiffeId.toString(),
      trustDomain: verified.spiffeId.trustDomain,
      path: verified.spiffeId.path,
      serial: verified.serial,
      notAfter: verified.notAfter,
      leafDer,
    };
    const bundle = bundles.get(identity.trustDomain);
    if (bundle !== undefined) {
      if (cache.size >= PEER_CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
      cache.set(key, { identity, notBefore: verified.notBefore, bundle });
    }
    return identity;
  };
}
