import { status } from "@grpc/grpc-js";
import type { ServerUnaryCall } from "@grpc/grpc-js";
import { EwiiError, asError, isEwiiError } from "../errors.js";

/** The verified identity of the TLS peer of a call. */
export interface PeerIdentity {
  /** The SPIFFE ID from the leaf's URI SAN, for example "spiffe://acme.example/client/site-1". */
  spiffeId: string;
  trustDomain: string;
  /** Path of the SPIFFE ID, starting with "/". */
  path: string;
  /** Leaf serial number, lowercase hexadecimal. */
  serial: string;
  notAfter: Date;
  /** The leaf certificate, DER. */
  leafDer: Buffer;
}

/**
 * Verifies a peer's leaf certificate (DER) and returns its identity, or
 * throws an EwiiError whose code names the reason for rejecting the peer. TLS has
 * already checked that the leaf chains to one of the trusted CAs. That set
 * is the union of every tenant's CAs, so the verifier must still check that
 * the issuing CA belongs to the trust domain named in the SPIFFE ID.
 */
export type PeerVerifier = (leafDer: Buffer) => PeerIdentity;

/**
 * Auth context of a server call, as `getAuthContext()` returns it in
 * grpc-js >= 1.14. The package does not export the type, so it is derived
 * from the method.
 */
export type AuthContext = NonNullable<ReturnType<ServerUnaryCall<unknown, unknown>["getAuthContext"]>>;

/** Any server call object that exposes its TLS peer. */
export interface CallWithAuthContext {
  getAuthContext(): AuthContext | null;
}

/**
 * Returns the DER leaf certificate the peer presented, or undefined on a
 * plaintext connection, without a client certificate, or when the
 * certificate did not chain to a trusted CA (grpc-js hides it then). grpc-js
 * returns the leaf only, never the chain.
 */
export function peerLeafDer(call: CallWithAuthContext): Buffer | undefined {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  return raw !== undefined && raw.length > 0 ? raw : undefined;
}

/**
 * Runs the verifier on the call's client certificate. Returns undefined when
 * the peer presented none. A verifier failure becomes UNAUTHENTICATED with
 * the verifier's error code, or ERR_PEER_UNVERIFIED when the verifier threw
 * something other than an EwiiError.
 */
export function authenticatePeer(call: CallWithAuthContext, verifyPeer: PeerVerifier): PeerIdentity | undefined {
  const leafDer = peerLeafDer(call);
  if (leafDer === undefined) return undefined;
  try {
    return verifyPeer(leafDer);
  } catch (err: unknown) {
    if (isEwiiError(err)) {
      throw new EwiiError(err.code, err.message, { status: status.UNAUTHENTICATED, cause: err, details: { ...err.details } });
    }
    throw new EwiiError("ERR_PEER_UNVERIFIED", "the client certificate could not be verified; present a valid SVID", {
      status: status.UNAUTHENTICATED,
      cause: asError(err),
    });
  }
}

/** Creates the error for a call that needs a client certificate and came without one. */
export function peerRequiredError(method: string): EwiiError {
  return new EwiiError(
    "ERR_PEER_REQUIRED",
    `${method} requires a client certificate; connect with mTLS using a valid SVID`,
    { status: status.UNAUTHENTICATED },
  );
}
