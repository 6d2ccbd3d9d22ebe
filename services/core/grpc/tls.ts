import { createSecureContext } from "node:tls";
import { status } from "@grpc/grpc-js";
import { EwiiError, asError } from "../errors.js";

/** The certificate, key and trusted CAs of one TLS endpoint, all PEM. */
export interface TlsMaterial {
  /** Certificate chain, leaf first, concatenated PEM. */
  certChainPem: string;
  /** Private key of the leaf, PEM (PKCS#8 or SEC1). */
  privateKeyPem: string;
  /** Concatenated PEM of every CA the endpoint accepts peer certificates from. */
  trustedCasPem: string;
}

export type TlsMaterialListener = (material: TlsMaterial) => void;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g;

/**
 * Returns each certificate of a PEM bundle as its own PEM block. OpenSSL
 * drops or misreads certificates in a bundle whose blocks are joined without
 * a newline, so Ewii passes certificates to TLS one by one.
 */
export function splitPemCertificates(pem: string): string[] {
  return (pem.match(PEM_CERTIFICATE) ?? []).map((block) => `${block}\n`);
}

/**
 * Checks that Node can build a TLS context from the material: every PEM
 * parses and the private key matches the leaf certificate. Throws
 * ERR_TLS_MATERIAL_INVALID without echoing any PEM text.
 */
export function validateTlsMaterial(material: TlsMaterial): void {
  if (material.certChainPem.trim() === "" || material.privateKeyPem.trim() === "" || material.trustedCasPem.trim() === "") {
    throw new EwiiError(
      "ERR_TLS_MATERIAL_INVALID",
      "TLS material is incomplete: certChainPem, privateKeyPem and trustedCasPem must each hold PEM text",
      { status: status.FAILED_PRECONDITION },
    );
  }
  const chain = splitPemCertificates(material.certChainPem);
  const trusted = splitPemCertificates(material.trustedCasPem);
  if (chain.length === 0 || trusted.length === 0) {
    throw new EwiiError(
      "ERR_TLS_MATERIAL_INVALID",
      `TLS material holds ${chain.length} chain and ${trusted.length} CA certificate(s); each needs at least one PEM "CERTIFICATE" block`,
      { status: status.FAILED_PRECONDITION },
    );
  }
  try {
    createSecureContext({ cert: chain.join(""), key: material.privateKeyPem, ca: trusted });
  } catch (err: unknown) {
    // The OpenSSL message names the failing step ("key values mismatch",
    // "no start line") and never contains key bytes.
    throw new EwiiError(
      "ERR_TLS_MATERIAL_INVALID",
      `TLS material is invalid (${asError(err).message}); check that the certificate chain, key and CA bundle are PEM and that the key belongs to the leaf`,
      { status: status.FAILED_PRECONDITION, cause: err },
    );
  }
}

/**
 * The current TLS material of a server or client, replaceable at run time.
 * Servers built by `startGrpcServer` subscribe to it, so `update` rotates the
 * certificate, key and trusted CAs for every new connection without a
 * restart. Connections already open keep the material they started with.
 */
export class TlsMaterialSource {
  private material: TlsMaterial;
  private readonly listeners = new Set<TlsMaterialListener>();

  constructor(initial: TlsMaterial) {
    validateTlsMaterial(initial);
    this.material = initial;
  }

  current(): TlsMaterial {
    return this.material;
  }

  /**
   * Replaces the material and notifies every listener synchronously.
   * Invalid material throws ERR_TLS_MATERIAL_INVALID and leaves the current
   * material in place, so a bad rotation never takes a running server down.
   */
  update(next: TlsMaterial): void {
    validateTlsMaterial(next);
    this.material = next;

    const failures: unknown[] = [];
    for (const listener of [...this.listeners]) {
      try {
        listener(next);
      } catch (err: unknown) {
        failures.push(err);
      }
    }
    if (failures.length > 0) {
      throw new AggregateError(failures, `${failures.length} TLS material listener(s) failed after the update was applied`);
    }
  }

  /** Registers a listener called on every update; returns its unsubscribe function. */
  onChange(listener: TlsMaterialListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
