import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";

/** A throwaway redis-server on a free loopback port, without persistence. */
export class RedisServer {
  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  static async start(): Promise<RedisServer> {
    const port = await freePort();
    const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    const server = new RedisServer(port, child);
    const probe = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // Refused connections while the server starts are expected; connect() rejects with them.
    probe.on("error", () => undefined);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await probe.connect();
        await probe.ping();
        break;
      } catch (err) {
        probe.disconnect();
        if (Date.now() > deadline) throw err;
        await new Promise((done) => setTimeout(done, 50));
      }
    }
    probe.disconnect();
    return server;
  }

  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 2 });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((done) => this.child.once("exit", done));
    this.child.kill("SIGTERM");
    await exited;
  }
}

/** Asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((done) => server.close(done));
  if (address === null || typeof address === "string") throw new Error("no TCP port was assigned");
  return address.port;
}
