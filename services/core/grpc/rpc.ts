import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { status } from "@grpc/grpc-js";
import type {
  Metadata,
  ServerDuplexStream,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceError,
  handleBidiStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
} from "@grpc/grpc-js";
import { EwiiError, toServiceError } from "../errors.js";
import { LogField, type Logger } from "../log.js";
import { openCallScope } from "./call-scope.js";
import { authenticatePeer, peerRequiredError, type PeerIdentity, type PeerVerifier } from "./peer.js";

/** Call context passed to every handler besides its request. */
export interface RpcContext {
  /** The verified caller, or undefined on an `allowAnonymous` method called without a client certificate. */
  peer: PeerIdentity | undefined;
  /** Child logger tagged with the method and the caller's SPIFFE ID. */
  logger: Logger;
  /** Full method path, for example "/ewii.ca.v1.CAService/Enroll". */
  method: string;
  /** Aborted when the call is cancelled or its deadline passes. */
  signal: AbortSignal;
  deadline: Date | undefined;
  /** Request metadata (headers) sent by the caller. */
  metadata: Metadata;
}

export interface ServerStreamContext<Res> extends RpcContext {
  /**
   * Sends one message. Resolves at once while the stream's buffer has room
   * and otherwise once it drains, so a slow reader slows the handler down.
   * Rejects with ERR_RPC_CANCELLED once the call is cancelled.
   */
  write(res: Res): Promise<void>;
}

export interface RpcOptions {
  /**
   * Accept callers without a client certificate (for example CA Enroll).
   * A certificate that is presented must still pass the verifier.
   */
  allowAnonymous?: boolean;
}

export interface RpcEdgeOptions {
  logger: Logger;
  verifyPeer: PeerVerifier;
}

type UnaryHandler<Req, Res> = (req: Req, ctx: RpcContext) => Promise<Res>;
type ServerStreamHandler<Req, Res> = (req: Req, ctx: ServerStreamContext<Res>) => Promise<void>;
type BidiStreamHandler<Req, Res> = (call: ServerDuplexStream<Req, Res>, ctx: RpcContext) => Promise<void>;

type AnyServerCall =
  | ServerUnaryCall<unknown, unknown>
  | ServerWritableStream<unknown, unknown>
  | ServerDuplexStream<unknown, unknown>;

/**
 * The one edge where Ewii handlers run. Each wrapper turns an async handler
 * into a grpc-js handler. The wrapper authenticates the peer with the
 * server's verifier and passes an RpcContext. It maps any thrown value to a
 * gRPC status with `toServiceError`, which logs the cause, and logs every
 * call at debug with method, caller and duration.
 *
 * A server built by `startGrpcServer` owns one RpcEdge, passed to each
 * service's implementation factory and exposed as `RunningServer.rpc`.
 */
export class RpcEdge {
  readonly logger: Logger;
  readonly verifyPeer: PeerVerifier;

  constructor(options: RpcEdgeOptions) {
    this.logger = options.logger;
    this.verifyPeer = options.verifyPeer;
  }

  unary<Req, Res>(handler: UnaryHandler<Req, Res>, options: RpcOptions = {}): handleUnaryCall<Req, Res> {
    return (call, callback) => {
      void this.run(
        call,
        options,
        async (ctx) => {
          const res = await handler(call.request, ctx);
          callback(null, res);
        },
        (error) => callback(error),
      );
    };
  }

  serverStream<Req, Res>(handler: ServerStreamHandler<Req, Res>, options: RpcOptions = {}): handleServerStreamingCall<Req, Res> {
    return (call) => {
      void this.run(
        call,
        options,
        async (ctx) => {
          await handler(call.request, { ...ctx, write: (res) => writeWithBackpressure(call, res, ctx.signal) });
          if (!call.writableEnded) call.end();
        },
        (error) => endStreamWithError(call, error),
      );
    };
  }

  /**
   * The handler owns the stream. It reads with `for await`, writes with
   * `call.write` and may end it. The wrapper ends the stream after the
   * handler returns if the handler did not. A handler that still writes
   * after the client half-closes must read from
   * `call.iterator({ destroyOnReturn: false })`, because the default
   * iterator destroys the stream when the reading loop ends.
   */
  bidiStream<Req, Res>(handler: BidiStreamHandler<Req, Res>, options: RpcOptions = {}): handleBidiStreamingCall<Req, Res> {
    return (call) => {
      void this.run(
        call,
        options,
        async (ctx) => {
          await handler(call, ctx);
          if (!call.writableEnded) call.end();
        },
        (error) => endStreamWithError(call, error),
      );
    };
  }

  private async run(
    call: AnyServerCall,
    options: RpcOptions,
    body: (ctx: RpcContext) => Promise<void>,
    sendError: (error: Partial<ServiceError>) => void,
  ): Promise<void> {
    const method = call.getPath();
    const startedMs = performance.now();
    const scope = openCallScope(call);
    let peer: PeerIdentity | undefined;
    let outcome: status = status.OK;
    let logger = this.logger.child({ [LogField.method]: method });

    try {
      peer = authenticatePeer(call, this.verifyPeer);
      if (peer === undefined && options.allowAnonymous !== true) throw peerRequiredError(method);
      if (peer !== undefined) logger = logger.child({ [LogField.spiffeId]: peer.spiffeId, [LogField.serial]: peer.serial });

      await body({ peer, logger, method, signal: scope.signal, deadline: scope.deadline, metadata: call.metadata });
    } catch (err: unknown) {
      if (call.cancelled) {
        // The caller is gone, so no status can reach it; the cause only matters for debugging.
        outcome = status.CANCELLED;
        logger.debug("handler ended after the call was cancelled", { cause: err instanceof Error ? err.message : String(err) });
      } else {
        const error = toServiceError(err, logger);
        outcome = error.code ?? status.UNKNOWN;
        sendError(error);
      }
    } finally {
      scope.dispose();
      logger.debug("rpc finished", {
        status: status[outcome],
        duration_ms: Math.round((performance.now() - startedMs) * 1000) / 1000,
      });
    }
  }
}

/** Creates the RPC edge of one server; `startGrpcServer` calls it for you. */
export function createRpcEdge(options: RpcEdgeOptions): RpcEdge {
  return new RpcEdge(options);
}

async function writeWithBackpressure<Res>(call: ServerWritableStream<unknown, Res>, res: Res, signal: AbortSignal): Promise<void> {
  if (signal.aborted) throw signal.reason;
  if (call.writableEnded) {
    throw new TypeError("write() called after the stream ended; return from the handler instead");
  }
  if (call.write(res)) return;
  try {
    await once(call, "drain", { signal });
  } catch (err: unknown) {
    if (signal.aborted) throw signal.reason;
    throw err;
  }
}

function endStreamWithError(call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>, error: Partial<ServiceError>): void {
  if (call.writableEnded) {
    // The handler already ended the stream with OK, so the status cannot
    // change any more; toServiceError has logged the error.
    return;
  }
  // grpc-js turns an "error" event on a server stream into the call's status.
  call.emit("error", error);
}

/** Tells whether a thrown value is the abort reason of a cancelled or expired call. */
export function isCallAbortError(err: unknown): err is EwiiError {
  return err instanceof EwiiError && (err.code === "ERR_RPC_CANCELLED" || err.code === "ERR_RPC_DEADLINE_EXCEEDED");
}
