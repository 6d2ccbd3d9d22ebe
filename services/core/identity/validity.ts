/**
 * How far before its issue time an SVID's or CA's notBefore is set, to
 * absorb clock skew between hosts: 60 seconds. Relays and hubs add it back
 * to a certificate's notBefore to learn when the CA issued it, because a
 * revocation of a SPIFFE ID, path prefix or tenant covers only certificates
 * issued at or before the revocation.
 */
export const NOT_BEFORE_BACKDATE_MS = 60 * 1000;
