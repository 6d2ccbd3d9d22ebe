import { Server, status } from "@grpc/grpc-js";
import type { ServiceDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { EwiiError, asError } from "../errors.js";
import type { Logger } from "../log.js";
import {
  DEFAULT_DESCRIPTOR_SET_PATH,
  builtinServicesAuthInterceptor,
  createHealthService,
  createReflectionService,
} from "./builtin-services.js";
import type { PeerVerifier } from "./peer.js";
import { RpcEdge } from "./rpc.js";
import { RotatingServerCredentials } from "./server-credentials.js";
import type { TlsMaterialSource } from "./tls.js";

export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * The server pings each connection every 10 s and drops it when no ping ack
 * arrives within 5 s, so a dead peer is detected within about 15 s.
 */
export const DEFAULT_SERVER_KEEPALIVE = { timeMs: 10_000, timeoutMs: 5_000 } as const;

export const DEFAULT_CLOSE_GRACE_MS = 5_000;

export interface GrpcServiceRegistration {
  definition: ServiceDefinition;
  /**
   * The handlers, or a factory that receives the server's RpcEdge and
   * returns them: `(rpc) => ({ enroll: rpc.unary(enroll, { allowAnonymous: true }) })`.
   */
  implementation: UntypedServiceImplementation | ((rpc: RpcEdge) => UntypedServiceImplementation);
  /** Fully qualified service name for health and reflection, for example "ewii.ca.v1.CAService". */
  healthName: string;
}

export interface GrpcServerOptions {
  /** Server name for logs, for example "ca". */
  name: string;
  /** "host:port" to bind, for example "127.0.0.1:0" for a free port. */
  listen: string;
  logger: Logger;
  tls: TlsMaterialSource;
  /** Reject TLS handshakes without a trusted client certificate. False lets `allowAnonymous` methods work. */
  requireClientCert: boolean;
  verifyPeer: PeerVerifier;
  services: GrpcServiceRegistration[];
  /** Largest request message accepted, in bytes. Default 4 MiB. */
  maxReceiveMessageBytes?: number;
  keepalive?: { timeMs?: number; timeoutMs?: number };
  /** Serialized FileDescriptorSet for reflection. Default gen/descriptors.binpb. */
  descriptorSetPath?: string;
}

export interface RunningServer {
  /** The bound port, useful after listening on port 0. */
  port: number;
  /** "host:port" as bound. */
  address: string;
  server: Server;
  /** The edge the services' handlers run in. */
  rpc: RpcEdge;
  /**
   * Sets the health status of one service by its health name, or of every
   * service and the overall "" entry when `service` is omitted.
   */
  setServing(serving: boolean, service?: string): void;
  /**
   * Reports NOT_SERVING, stops accepting calls, waits up to `graceMs` for
   * calls in flight, then cancels the rest.
   */
  close(graceMs?: number): Promise<void>;
}

/** Starts a gRPC server with mTLS, certificate rotation, health and reflection. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningServer> {
  const logger = options.logger.child({ server: options.name });
  const keepalive = { ...DEFAULT_SERVER_KEEPALIVE, ...options.keepalive };
  const rpc = new RpcEdge({ logger, verifyPeer: options.verifyPeer });
  const healthNames = options.services.map((service) => service.healthName);

  const server = new Server({
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
    "grpc.keepalive_time_ms": keepalive.timeMs,
    "grpc.keepalive_timeout_ms": keepalive.timeoutMs,
    interceptors: [builtinServicesAuthInterceptor(options.verifyPeer, logger)],
  });

  for (const service of options.services) {
    const implementation = typeof service.implementation === "function" ? service.implementation(rpc) : service.implementation;
    server.addService(service.definition, implementation);
  }
  const health = createHealthService(healthNames);
  health.addToServer(server);
  createReflectionService(options.descriptorSetPath ?? DEFAULT_DESCRIPTOR_SET_PATH, healthNames).addToServer(server);

  const credentials = new RotatingServerCredentials(options.tls, options.requireClientCert);
  let port: number;
  try {
    port = await bind(server, options.listen, credentials);
  } catch (err: unknown) {
    credentials.dispose();
    throw new EwiiError("ERR_GRPC_LISTEN_FAILED", `${options.name} cannot listen on ${options.listen}: ${asError(err).message}`, {
      status: status.UNAVAILABLE,
      cause: err,
    });
  }
  const address = `${listenHost(options.listen)}:${port}`;
  logger.info("gRPC server listening", { address, services: healthNames, require_client_cert: options.requireClientCert });

  const setServing = (serving: boolean, service?: string): void => {
    const value = serving ? "SERVING" : "NOT_SERVING";
    if (service === undefined) {
      for (const name of ["", ...healthNames]) health.setStatus(name, value);
    } else if (service === "" || healthNames.includes(service)) {
      health.setStatus(service, value);
    } else {
      throw new TypeError(`setServing: unknown service "${service}"; expected one of ${JSON.stringify(healthNames)}`);
    }
    logger.info("health status changed", { service: service ?? "*", status: value });
  };

  let closing: Promise<void> | undefined;
  const close = (graceMs: number = DEFAULT_CLOSE_GRACE_MS): Promise<void> => {
    if (closing === undefined) {
      for (const name of ["", ...healthNames]) health.setStatus(name, "NOT_SERVING");
      closing = shutdown(server, graceMs).then(() => {
        credentials.dispose();
        logger.info("gRPC server stopped", { address });
      });
    }
    return closing;
  };

  return { port, address, server, rpc, setServing, close };
}

function bind(server: Server, listen: string, credentials: RotatingServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, credentials, (err, port) => {
      if (err !== null) reject(err);
      else resolve(port);
    });
  });
}

function shutdown(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Returns the host part of "host:port" or "[v6]:port", brackets kept. */
function listenHost(listen: string): string {
  const colon = listen.lastIndexOf(":");
  return colon === -1 ? listen : listen.slice(0, colon);
}
