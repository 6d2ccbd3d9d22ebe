/**
 * A TCP syslog receiver for tests and benchmarks: it accepts connections on
 * loopback, splits RFC 6587 octet-counted frames ("LEN SP MSG") and counts
 * them. With `keepSequences` it also stores the `seq` parameter of each
 * frame's structured data, in arrival order.
 */
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";

const SPACE = 0x20;
/** Maximum digits accepted in MSG-LEN before the space. */
const MAX_LENGTH_DIGITS = 10;
const SEQUENCE_PATTERN = / seq="(\d+)"/;

export class FrameReceiver {
  frames = 0;
  bytes = 0;
  readonly sequences: bigint[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: { keepSequences: boolean }) {}

  /** Connections accepted and not yet closed. */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** Listens on 127.0.0.1 (port 0 picks a free port) and returns the port. */
  async listen(port = 0): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.server = server;
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the receiver has no TCP address");
    return address.port;
  }

  /** Stops listening and closes every open connection. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    let pending: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let start = 0;
      for (;;) {
        const space = pending.indexOf(SPACE, start);
        if (space === -1 || space - start > MAX_LENGTH_DIGITS) break;
        const length = Number(pending.toString("ascii", start, space));
        if (!Number.isInteger(length) || length <= 0) {
          socket.destroy(new Error(`invalid octet-counting frame length at byte ${start}`));
          return;
        }
        const end = space + 1 + length;
        if (end > pending.length) break;
        this.frames += 1;
        this.bytes += length;
        if (this.options.keepSequences) this.keepSequence(pending.toString("utf8", space + 1, end));
        start = end;
      }
      pending = pending.subarray(start);
    });
    socket.on("error", () => undefined);
    socket.on("close", () => this.sockets.delete(socket));
  }

  private keepSequence(message: string): void {
    const match = SEQUENCE_PATTERN.exec(message);
    if (match === null) throw new Error(`a received frame has no seq parameter: ${message.slice(0, 120)}`);
    this.sequences.push(BigInt(match[1]));
  }
}
