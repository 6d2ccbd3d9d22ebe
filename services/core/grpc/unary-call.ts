import { Metadata } from "@grpc/grpc-js";
import type { CallOptions, ClientUnaryCall, ServiceError } from "@grpc/grpc-js";

/** Default deadline of a unary call made by Ewii code, in milliseconds. */
export const DEFAULT_UNARY_DEADLINE_MS = 10_000;

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/**
 * Calls a generated unary client method and returns a promise, with a
 * deadline and optional cancellation. Pass the method bound to its client:
 * `callUnary(client.getTenant.bind(client), request)`.
 */
export function callUnary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, options: { deadlineMs?: number; signal?: AbortSignal; metadata?: Metadata } = {}): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const deadline = new Date(Date.now() + (options.deadlineMs ?? DEFAULT_UNARY_DEADLINE_MS));
    const call = method(request, options.metadata ?? new Metadata(), { deadline }, (error, response) => {
      options.signal?.removeEventListener("abort", onAbort);
      if (error !== null) reject(error);
      else resolve(response);
    });
    const onAbort = (): void => call.cancel();
    options.signal?.addEventListener("abort", onAbort, { once: true });
  });
}
