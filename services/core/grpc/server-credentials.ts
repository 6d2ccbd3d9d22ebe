import type { SecureContextOptions } from "node:tls";
import { ServerCredentials } from "@grpc/grpc-js";
import { splitPemCertificates, type TlsMaterial, type TlsMaterialSource } from "./tls.js";

/**
 * Server credentials that follow a TlsMaterialSource.
 *
 * Why this approach: grpc-js (>= 1.11, checked on 1.14.7) calls
 * `setSecureContext` on its HTTP/2 server whenever a ServerCredentials
 * subclass calls the protected `updateSecureContextOptions`, so one
 * synchronous call swaps certificate, key and trusted CAs together for every
 * new connection. The certificate-provider credentials are experimental,
 * need listeners called asynchronously and take the identity provider as
 * their first argument despite its name. FileWatcherCertificateProvider only
 * reads files, while Ewii services rotate SVIDs they receive over RPC in
 * memory. The cost is reliance on a
 * protected method and the `_equals` hook, so a grpc-js upgrade must keep the
 * rotation test passing.
 */
export class RotatingServerCredentials extends ServerCredentials {
  private readonly unsubscribe: () => void;

  /**
   * `requireClientCert` true makes the TLS handshake fail without a client
   * certificate chaining to a trusted CA. False still requests one, so
   * anonymous and authenticated callers share the port. A certificate that
   * does not chain to a trusted CA then leaves the caller anonymous, because
   * grpc-js reports no peer certificate on an unauthorized socket.
   */
  constructor(source: TlsMaterialSource, requireClientCert: boolean) {
    super({ requestCert: true, rejectUnauthorized: requireClientCert }, toSecureContextOptions(source.current()));
    this.unsubscribe = source.onChange((material) => {
      this.updateSecureContextOptions(toSecureContextOptions(material));
    });
  }

  /** Stops following the source; call when the server closes. */
  dispose(): void {
    this.unsubscribe();
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

function toSecureContextOptions(material: TlsMaterial): SecureContextOptions {
  return {
    cert: splitPemCertificates(material.certChainPem).join(""),
    key: material.privateKeyPem,
    ca: splitPemCertificates(material.trustedCasPem),
    minVersion: "TLSv1.2",
  };
}
