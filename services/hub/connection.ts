import { X509Certificate, type KeyObject } from "node:crypto";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { OpenSessionRequest, OpenSessionResponse } from "../../gen/ewii/relay/v1/relay.js";
import type { QueryRequest, SessionMessage } from "../../gen/ewii/tunnel/v1/tunnel.js";
import { EwiiError, errorCodeOf, isEwiiError } from "../core/errors.js";
import { LogField, type Logger } from "../core/log.js";
import type { Session } from "../core/session/index.js";
import type { ClientConnection } from "./ports.js";
import { forEachEncodedRow } from "./row-bytes.js";

/** Messages queued for one in-flight query, read by its async iterator. */
class MessageQueue {
  private readonly items: SessionMessage[] = [];

  constructor(readonly onRowBytes: ((encoded: Uint8Array) => void) | undefined) {}

  private waiter: ((value: void) => void) | undefined;
  private failure: EwiiError | undefined;
  private done = false;

  push(message: SessionMessage): void {
    this.items.push(message);
    this.wake();
  }

  fail(error: EwiiError): void {
    this.failure ??= error;
    this.wake();
  }

  finish(): void {
    this.done = true;
    this.wake();
  }

  async *drain(): AsyncGenerator<SessionMessage> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (this.failure !== undefined) throw this.failure;
      if (this.done) return;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

/**
 * One end-to-end session from this hub to one client, over one relay's
 * OpenSession stream, carrying any number of concurrent queries told apart
 * by request id.
 */
export class HubConnection implements ClientConnection {
  readonly clientCertDer: Buffer;
  readonly clientPublicKey: KeyObject;
  private readonly pending = new Map<string, MessageQueue>();
  private closedReason: string | undefined;
  framesRejected = 0;

  constructor(
    readonly clientSpiffeId: string,
    readonly relayId: string,
    private readonly session: Session,
    clientLeafDer: Uint8Array,
    private readonly stream: ClientDuplexStream<OpenSessionRequest, OpenSessionResponse>,
    private readonly logger: Logger,
    private readonly onClosed: (connection: HubConnection) => void,
  ) {
    this.clientCertDer = Buffer.from(clientLeafDer);
    this.clientPublicKey = new X509Certificate(this.clientCertDer).publicKey;
    stream.on("data", (response: OpenSessionResponse) => this.onResponse(response));
    stream.on("error", (err: unknown) => this.close(`relay stream failed: ${errorCodeOf(err) ?? String(err)}`));
    stream.on("end", () => this.close("relay ended the session stream"));
  }

  get clientSerial(): string {
    return this.session.peerSerial;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  get openQueries(): number {
    return this.pending.size;
  }

  async *query(request: QueryRequest, signal: AbortSignal, onRowBytes?: (encoded: Uint8Array) => void): AsyncGenerator<SessionMessage> {
    if (this.closedReason !== undefined) throw this.closedError();
    const key = Buffer.from(request.requestId).toString("hex");
    const queue = new MessageQueue(onRowBytes);
    this.pending.set(key, queue);
    const onAbort = (): void => {
      this.sendMessage({ cancel: { requestId: request.requestId } });
      queue.fail(new EwiiError("ERR_QUERY_CANCELLED", "the caller cancelled the query or its deadline passed; the client was asked to stop it", { status: status.CANCELLED }));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      this.sendMessage({ query: request });
      for await (const message of queue.drain()) {
        yield message;
        if (message.summary !== undefined) return;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.pending.delete(key);
    }
  }

  close(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const queue of this.pending.values()) queue.fail(this.closedError());
    this.pending.clear();
    this.session.close();
    if (!this.stream.writableEnded) {
      this.stream.write({ frame: { sessionId: Buffer.from(this.session.id), closeReason: reason } });
      this.stream.end();
    }
    this.logger.info("client session closed", { [LogField.clientSpiffeId]: this.clientSpiffeId, [LogField.relayId]: this.relayId, reason });
    this.onClosed(this);
  }

  private closedError(): EwiiError {
    return new EwiiError("ERR_SESSION_CLOSED", `the session to client ${this.clientSpiffeId} closed (${this.closedReason}); retry the query`, { status: status.UNAVAILABLE });
  }

  private sendMessage(message: SessionMessage): void {
    if (this.closedReason !== undefined) return;
    this.stream.write({ frame: { sessionId: Buffer.from(this.session.id), sealed: this.session.seal(message) } });
  }

  private onResponse(response: OpenSessionResponse): void {
    const frame = response.frame;
    if (frame === undefined) return;
    if (frame.closeReason !== undefined) {
      this.close(`client side closed: ${frame.closeReason}`);
      return;
    }
    if (frame.sealed === undefined) return;
    let message: SessionMessage;
    let plaintext: Uint8Array;
    try {
      ({ message, plaintext } = this.session.openWithPlaintext(frame.sealed));
    } catch (err) {
      this.framesRejected++;
      this.logger.warn("session frame rejected", { [LogField.clientSpiffeId]: this.clientSpiffeId, [LogField.errorCode]: (isEwiiError(err) ? err.code : undefined) ?? "ERR_FRAME_INVALID" });
      return;
    }
    const requestId = message.columns?.requestId ?? message.rows?.requestId ?? message.summary?.requestId;
    if (requestId === undefined) return;
    const queue = this.pending.get(Buffer.from(requestId).toString("hex"));
    if (queue === undefined) return;
    // The row bytes are handed over before the message is queued, so a
    // digest fed by them covers every row the iterator has yielded.
    if (message.rows !== undefined && queue.onRowBytes !== undefined) forEachEncodedRow(plaintext, queue.onRowBytes);
    queue.push(message);
  }
}
