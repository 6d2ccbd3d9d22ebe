import type { EventEmitter } from "node:events";
import { status } from "@grpc/grpc-js";
import type { Deadline } from "@grpc/grpc-js";
import { EwiiError } from "../errors.js";

/** The subset of a grpc-js server call that cancellation tracking needs. */
export interface CancellableCall extends Pick<EventEmitter, "once" | "removeListener"> {
  cancelled: boolean;
  getDeadline(): Deadline;
}

/** Lifetime of one call: an AbortSignal for cancellation and the deadline. */
export interface CallScope {
  /** Aborted when the client cancels, the connection drops or the deadline passes. */
  signal: AbortSignal;
  /** The client's deadline, or undefined when it set none. */
  deadline: Date | undefined;
  /** Releases the timer and listeners; call once the handler has finished. */
  dispose(): void;
}

/** Largest delay setTimeout accepts (about 24.8 days); longer deadlines never fire. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * Builds the scope of a call. grpc-js emits "cancelled" when the client
 * cancels or the stream closes early. It ends calls at their deadline with
 * DEADLINE_EXCEEDED, but it does not document whether handlers see
 * "cancelled" then, so a timer of our own aborts the signal at the deadline.
 */
export function openCallScope(call: CancellableCall, now: () => Date = () => new Date()): CallScope {
  const controller = new AbortController();
  const deadline = toDate(call.getDeadline());

  const onCancelled = (): void => {
    controller.abort(new EwiiError("ERR_RPC_CANCELLED", "the caller cancelled the call", { status: status.CANCELLED }));
  };
  call.once("cancelled", onCancelled);
  if (call.cancelled) onCancelled();

  let timer: NodeJS.Timeout | undefined;
  if (deadline !== undefined) {
    const remainingMs = deadline.getTime() - now().getTime();
    const onDeadline = (): void => {
      controller.abort(
        new EwiiError("ERR_RPC_DEADLINE_EXCEEDED", "the call's deadline passed before the handler finished", {
          status: status.DEADLINE_EXCEEDED,
        }),
      );
    };
    if (remainingMs <= 0) onDeadline();
    else if (remainingMs <= MAX_TIMER_DELAY_MS) {
      timer = setTimeout(onDeadline, remainingMs);
      timer.unref();
    }
  }

  return {
    signal: controller.signal,
    deadline,
    dispose: () => {
      clearTimeout(timer);
      call.removeListener("cancelled", onCancelled);
    },
  };
}

/** grpc-js reports "no deadline" as Infinity. */
function toDate(deadline: Deadline): Date | undefined {
  if (deadline instanceof Date) return deadline;
  return Number.isFinite(deadline) ? new Date(deadline) : undefined;
}
