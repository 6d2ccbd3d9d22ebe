import { verifyX509Svid, type BundleSource } from "../identity/index.js";
import type { PeerIdentity, PeerVerifier } from "../grpc/index.js";

/**
 * Creates a PeerVerifier that validates a peer's leaf as an X509-SVID
 * against the bundle of the trust domain named in its own SPIFFE ID, never
 * against another trust domain's CAs. TLS trusts the union of all bundles,
 * so this check is what keeps tenants apart.
 */
export function createPeerVerifier(bundles: BundleSource, now: () => Date = () => new Date()): PeerVerifier {
  return (leafDer: Buffer): PeerIdentity => {
    const verified = verifyX509Svid([leafDer], bundles, { now: now() });
    return {
      spiffeId: verified.spiffeId.toString(),
      trustDomain: verified.spiffeId.trustDomain,
      path: verified.spiffeId.path,
      serial: verified.serial,
      notAfter: verified.notAfter,
      leafDer,
    };
  };
}
