import "reflect-metadata";
import { isIP } from "node:net";
import type { PeerCertificate } from "node:tls";
import { SubjectAlternativeNameExtension, X509Certificate } from "@peculiar/x509";
import { credentials, status } from "@grpc/grpc-js";
import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";
import { EwiiError, asError } from "../errors.js";
import { splitPemCertificates, type TlsMaterial } from "./tls.js";

/**
 * Client keepalive: ping every 10 s, also between calls, and drop the
 * connection when no ping ack arrives within 5 s. Ewii servers (grpc-js)
 * accept this rate. Servers built on gRPC C-core or grpc-go with their
 * default ping policy would reply with GOAWAY "too_many_pings".
 */
export const DEFAULT_CLIENT_KEEPALIVE = { timeMs: 10_000, timeoutMs: 5_000 } as const;

/**
 * TLS server name sent when the target is an IP address. Servers identify
 * themselves by SPIFFE ID, not by host name, so any valid DNS name works.
 * The ".invalid" top-level domain is reserved by RFC 2606 and never resolves.
 */
export const IP_TARGET_SERVER_NAME = "ewii-server.invalid";

export interface ClientCredentialsOptions {
  /** Client certificate and key. Omit them for server-authenticated TLS only. */
  tls?: Pick<TlsMaterial, "certChainPem" | "privateKeyPem">;
  /** Concatenated PEM of the CAs the server's certificate must chain to. */
  trustedCasPem: string;
  /** Returns true for the server SPIFFE IDs this client accepts. */
  expectServer: (spiffeId: string) => boolean;
}

/**
 * Creates channel credentials that verify the server's chain against
 * `trustedCasPem` and replace the host name check by a check of the server's
 * SPIFFE ID (its single URI SAN) with `expectServer`.
 *
 * The credentials are fixed at creation. After the client's SVID rotates,
 * create new credentials and a new channel.
 */
export function createClientCredentials(options: ClientCredentialsOptions): ChannelCredentials {
  const checkServerIdentity = (_hostname: string, cert: PeerCertificate): Error | undefined => {
    try {
      const spiffeId = spiffeIdOfCertificate(cert.raw);
      if (!options.expectServer(spiffeId)) {
        return new EwiiError(
          "ERR_SERVER_IDENTITY_UNEXPECTED",
          `server presented SPIFFE ID ${spiffeId}, which this client does not expect; check the target address and the expected server identity`,
          { status: status.UNAVAILABLE },
        );
      }
      return undefined;
    } catch (err: unknown) {
      return asError(err);
    }
  };

  return credentials.createSsl(
    Buffer.from(splitPemCertificates(options.trustedCasPem).join("")),
    options.tls === undefined ? null : Buffer.from(options.tls.privateKeyPem),
    options.tls === undefined ? null : Buffer.from(splitPemCertificates(options.tls.certChainPem).join("")),
    { checkServerIdentity },
  );
}

/**
 * Returns the SPIFFE ID in the URI SAN of a DER certificate. An X509-SVID
 * has exactly one URI SAN with the spiffe scheme, so anything else throws
 * ERR_SERVER_IDENTITY_INVALID.
 */
export function spiffeIdOfCertificate(der: Buffer): string {
  const cert = new X509Certificate(new Uint8Array(der));
  const san = cert.getExtension(SubjectAlternativeNameExtension);
  const uris = san === null ? [] : san.names.items.filter((name) => name.type === "url").map((name) => name.value);
  if (uris.length !== 1 || !uris[0].startsWith("spiffe://")) {
    throw new EwiiError(
      "ERR_SERVER_IDENTITY_INVALID",
      `server certificate (serial ${cert.serialNumber}) has ${uris.length} URI SANs, expected exactly one spiffe:// URI`,
      { status: status.UNAVAILABLE },
    );
  }
  return uris[0];
}

/** Returns channel options for dialing an Ewii server: keepalive and a valid TLS server name. */
export function channelOptions(target: string): ChannelOptions {
  const options: ChannelOptions = {
    "grpc.keepalive_time_ms": DEFAULT_CLIENT_KEEPALIVE.timeMs,
    "grpc.keepalive_timeout_ms": DEFAULT_CLIENT_KEEPALIVE.timeoutMs,
    "grpc.keepalive_permit_without_calls": 1,
  };
  // TLS server names (SNI) must be DNS names. Node sends an IP target as
  // server name anyway and prints the deprecation warning DEP0123.
  if (isIP(parseHostPort(stripScheme(target)).host) !== 0) {
    options["grpc.ssl_target_name_override"] = IP_TARGET_SERVER_NAME;
  }
  return options;
}

/**
 * Turns "host:port" or "[v6]:port" into a grpc-js target with an explicit
 * resolver: "ipv4:", "ipv6:" or "dns:". Throws ERR_GRPC_TARGET_INVALID on
 * anything else.
 */
export function dialTarget(hostPort: string): string {
  const { host, port } = parseHostPort(hostPort);
  switch (isIP(host)) {
    case 4:
      return `ipv4:${host}:${port}`;
    case 6:
      return `ipv6:[${host}]:${port}`;
    default:
      return `dns:${host}:${port}`;
  }
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

function parseHostPort(hostPort: string): { host: string; port: number } {
  const match = HOST_PORT.exec(hostPort);
  const port = match === null ? NaN : Number(match[3]);
  if (match === null || port < 1 || port > 65535) {
    throw new EwiiError(
      "ERR_GRPC_TARGET_INVALID",
      `invalid gRPC target ${JSON.stringify(hostPort)}: expected "host:port" or "[ipv6]:port" with a port from 1 to 65535`,
      { status: status.INVALID_ARGUMENT },
    );
  }
  return { host: match[1] ?? match[2], port };
}

/** Removes a resolver prefix that `dialTarget` adds ("dns:", "ipv4:", "ipv6:"). */
function stripScheme(target: string): string {
  return target.replace(/^(?:dns:(?:\/\/[^/]*\/)?|ipv4:|ipv6:)/, "");
}
