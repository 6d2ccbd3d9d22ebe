/**
 * Starts Debian's rsyslogd on a free loopback port with its own
 * configuration in a temporary directory. It writes every received message
 * to `out.log` as its raw text, one per line.
 */
import { spawn, execFileSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";

export const RSYSLOGD = "/usr/sbin/rsyslogd";

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Creates a CA and a server certificate for 127.0.0.1 and localhost with openssl. */
export function createTlsFiles(dir: string): TlsFiles {
  const run = (...args: string[]): void => {
    execFileSync("openssl", args, { stdio: "ignore" });
  };
  const file = (name: string): string => join(dir, name);
  run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", file("ca.key"), "-out", file("ca.pem"), "-days", "2", "-subj", "/CN=test syslog CA");
  run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=localhost");
  execFileSync("sh", ["-c", `printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ${file("ext.cnf")}`]);
  run("x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial", "-out", file("server.pem"), "-days", "2", "-extfile", file("ext.cnf"));
  return { caFile: file("ca.pem"), certFile: file("server.pem"), keyFile: file("server.key") };
}

export class Rsyslog {
  private child: ChildProcess | undefined;
  readonly output: string;

  constructor(readonly dir: string, readonly port: number, private readonly tls?: TlsFiles) {
    this.output = join(dir, "out.log");
  }

  async start(): Promise<void> {
    const conf = join(this.dir, "rsyslog.conf");
    const global = this.tls === undefined ? "" : `global(DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${this.tls.caFile}" DefaultNetstreamDriverCertFile="${this.tls.certFile}" DefaultNetstreamDriverKeyFile="${this.tls.keyFile}")\n`;
    const driver = this.tls === undefined ? "" : ` StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon"`;
    await writeFile(
      conf,
      `global(workDirectory="${this.dir}" maxMessageSize="64k")\n${global}` +
        `module(load="imtcp"${driver})\n` +
        `input(type="imtcp" address="127.0.0.1" port="${this.port}")\n` +
        `template(name="raw" type="string" string="%rawmsg%\\n")\n` +
        `action(type="omfile" file="${this.output}" template="raw" asyncWriting="off" flushOnTXEnd="on")\n`,
    );
    this.child = spawn(RSYSLOGD, ["-n", "-f", conf, "-i", join(this.dir, "rsyslog.pid")], { stdio: ["ignore", "ignore", "pipe"] });
    await waitFor(async () => canConnect(this.port), `rsyslogd listening on ${this.port}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }

  /** Returns the messages written so far. */
  async messages(): Promise<string[]> {
    try {
      return (await readFile(this.output, "utf8")).split("\n").filter((line) => line !== "");
    } catch {
      return [];
    }
  }
}

async function canConnect(port: number): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** Polls `check` every 50 ms until it returns true, for up to 20 s. */
export async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
