/**
 * Where a sink's payloads go: a TCP or TLS stream with RFC 6587
 * octet-counted frames, or a local file of lines with size-based rotation.
 *
 * `send` resolves once the bytes are handed to the kernel (streams) or
 * synced to disk (files). A stream has no acknowledgement from the
 * receiver, so the exporter treats stream data as delivered only after the
 * connection stays up for a while longer (see exporter.ts).
 */
import { readFileSync } from "node:fs";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { Socket, connect as tcpConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { basename, dirname, join } from "node:path";
import { octetCountingFrame } from "./syslog-format.js";

export interface SinkTransport {
  /** Connects or opens the file. */
  open(): Promise<void>;
  /** Sends payloads in order; rejects when the connection or file fails. */
  send(payloads: readonly string[]): Promise<void>;
  /** Registers the callback for a connection lost between sends. */
  onLost(callback: (err: Error) => void): void;
  /** Ends the connection after its data is sent, or closes the file. */
  close(): Promise<void>;
  /** True when `send` returning means the receiver has the data. */
  readonly confirmsOnSend: boolean;
  readonly target: string;
}

export interface StreamTransportOptions {
  host: string;
  port: number;
  /** TLS (RFC 5425) when set. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string; serverName?: string };
  connectTimeoutMs: number;
  /** Time allowed for the receiver to close after our FIN on shutdown. */
  closeTimeoutMs: number;
}

export class StreamTransport implements SinkTransport {
  readonly confirmsOnSend = false;
  readonly target: string;
  private socket: Socket | undefined;
  private lost: ((err: Error) => void) | undefined;

  constructor(private readonly options: StreamTransportOptions) {
    this.target = `${options.tls === undefined ? "tcp" : "tls"}://${options.host}:${options.port}`;
  }

  onLost(callback: (err: Error) => void): void {
    this.lost = callback;
  }

  async open(): Promise<void> {
    const { host, port, tls } = this.options;
    const socket = await new Promise<Socket>((resolve, reject) => {
      let created: Socket;
      const fail = (err: Error): void => {
        created.destroy();
        reject(err);
      };
      if (tls === undefined) {
        created = tcpConnect({ host, port }, () => resolve(created));
      } else {
        // The files are read at each connection, so replaced certificates take effect on reconnect.
        created = tlsConnect(
          {
            host,
            port,
            servername: tls.serverName ?? host,
            ...(tls.caFile === undefined ? {} : { ca: readFileSync(tls.caFile) }),
            ...(tls.certFile === undefined ? {} : { cert: readFileSync(tls.certFile) }),
            ...(tls.keyFile === undefined ? {} : { key: readFileSync(tls.keyFile) }),
          },
          () => resolve(created),
        );
      }
      created.setTimeout(this.options.connectTimeoutMs, () => fail(new Error(`connection to ${this.target} timed out after ${this.options.connectTimeoutMs} ms`)));
      created.once("error", fail);
    });
    socket.setTimeout(0);
    socket.removeAllListeners("error");
    socket.setNoDelay(true);
    socket.setKeepAlive(true);
    const onLost = (err: Error): void => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      socket.destroy();
      this.lost?.(err);
    };
    socket.on("error", onLost);
    // A syslog receiver never writes; its FIN or reset means it went away.
    socket.on("end", () => onLost(new Error(`${this.target} closed the connection`)));
    socket.on("close", () => onLost(new Error(`the connection to ${this.target} closed`)));
    socket.on("data", () => undefined);
    this.socket = socket;
  }

  send(payloads: readonly string[]): Promise<void> {
    const socket = this.socket;
    if (socket === undefined) return Promise.reject(new Error(`not connected to ${this.target}`));
    const frames = Buffer.concat(payloads.map(octetCountingFrame));
    return new Promise<void>((resolve, reject) => {
      socket.write(frames, (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket === undefined) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        socket.destroy();
        resolve();
      }, this.options.closeTimeoutMs);
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }
}

export interface FileTransportOptions {
  path: string;
  /** The file is rotated once it reaches this size, in bytes. */
  rotateBytes: number;
  /** Rotated files kept; older ones are deleted. */
  keepFiles: number;
}

/**
 * Appends lines to a file and rotates it by renaming it to
 * `<path>.<6-digit number>` and opening a new one, so that tailers that
 * follow by inode (Fluent Bit, Vector) read the old file to its end first.
 */
export class RotatingFileTransport implements SinkTransport {
  readonly confirmsOnSend = true;
  readonly target: string;
  private file: FileHandle | undefined;
  private bytes = 0;

  constructor(private readonly options: FileTransportOptions) {
    this.target = `file://${options.path}`;
  }

  onLost(): void {
    // A file reports failures from send; there is no connection to lose.
  }

  async open(): Promise<void> {
    await mkdir(dirname(this.options.path), { recursive: true });
    this.file = await open(this.options.path, "a", 0o640);
    this.bytes = (await this.file.stat()).size;
  }

  async send(payloads: readonly string[]): Promise<void> {
    if (this.file === undefined) throw new Error(`${this.options.path} is not open`);
    const buffer = Buffer.from(`${payloads.join("\n")}\n`, "utf8");
    await this.file.write(buffer, 0, buffer.length);
    await this.file.datasync();
    this.bytes += buffer.length;
    if (this.bytes >= this.options.rotateBytes) await this.rotate();
  }

  async close(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    await file?.close();
  }

  private async rotate(): Promise<void> {
    const { path, keepFiles } = this.options;
    const rotated = await this.rotatedFiles();
    const next = (rotated.length === 0 ? 0 : rotated[rotated.length - 1].number) + 1;
    await rename(path, `${path}.${String(next).padStart(6, "0")}`);
    await this.close();
    await this.open();
    for (const old of rotated.slice(0, Math.max(0, rotated.length + 1 - keepFiles))) await rm(join(dirname(path), old.name), { force: true });
  }

  private async rotatedFiles(): Promise<Array<{ name: string; number: number }>> {
    const prefix = `${basename(this.options.path)}.`;
    const names = await readdir(dirname(this.options.path));
    return names
      .filter((name) => name.startsWith(prefix) && /^\d{6,}$/.test(name.slice(prefix.length)))
      .map((name) => ({ name, number: Number(name.slice(prefix.length)) }))
      .sort((a, b) => a.number - b.number);
  }
}

