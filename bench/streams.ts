// Idle client streams on one relay: the relay's resident memory and CPU at
// 1,000 and 10,000 concurrent Connect streams, each authenticated by its own
// SVID and kept alive by application heartbeats and HTTP/2 keepalive.
// The relay runs as a child process (services/relay/main.ts), so its RSS
// and CPU time are its own. The streams come from this process, over one
// grpc-js channel each.
// Usage: node --import tsx bench/streams.ts [--seconds N] [--streams 1000,10000]
import "reflect-metadata";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { stringify as stringifyYaml } from "yaml";
import { RelayServiceClient, type ConnectRequest, type ConnectResponse } from "../gen/ewii/relay/v1/relay.js";
import { credentialPaths, initOperator, Kek, startCaService } from "../services/ca/index.js";
import { activeCaOf, signingCaOf } from "../services/ca/context.js";
import { createTenant, tenantTrustDomain } from "../services/ca/tenants.js";
import { channelOptions, createClientCredentials, dialTarget } from "../services/core/grpc/index.js";
import { derToPem, generateKeyPair, issueX509Svid, privateKeyToPem, SpiffeId } from "../services/core/identity/index.js";
import { silentLogger } from "../services/core/log.js";
import type { BenchResult } from "./result.js";

const OPERATOR_TD = "bench.example";
const TENANT = "bench";
/** Relay and client heartbeat interval, the product default. */
const HEARTBEAT_INTERVAL_MS = 5_000;
const DEAD_PEER_TIMEOUT_MS = 15_000;
/** Streams opened at the same time while ramping up. */
const OPEN_CONCURRENCY = 200;
const RSS_BUDGET_BYTES = 1024 ** 3;
const DEFAULT_STREAM_COUNTS = [1_000, 10_000];
const CLOCK_TICKS_PER_SECOND = 100;

interface RelayChild {
  child: ChildProcess;
  address: string;
}

interface OpenStream {
  client: RelayServiceClient;
  call: ClientDuplexStream<ConnectRequest, ConnectResponse>;
}

/** Resident set size of a process in bytes, from /proc (Linux only). */
function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (match === null) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(match[1]) * 1024;
}

/** User plus system CPU time of a process in seconds, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

async function spawnRelay(dir: string, config: Record<string, unknown>): Promise<RelayChild> {
  const file = join(dir, "relay.yaml");
  writeFileSync(file, stringifyYaml(config));
  const main = fileURLToPath(new URL("../services/relay/main.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", main, file], { stdio: ["ignore", "pipe", "inherit"] });
  const address = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (text: string) => {
      buffered += text;
      const newline = buffered.indexOf("\n");
      if (newline >= 0) resolve((JSON.parse(buffered.slice(0, newline)) as { address: string }).address);
    });
    child.once("exit", (code) => reject(new Error(`relay process exited with code ${code} before it listened`)));
  });
  return { child, address };
}

/** Opens one Connect stream and resolves once the relay accepted it. */
function openStream(address: string, tls: { certChainPem: string; privateKeyPem: string }, trustedCasPem: string): Promise<OpenStream> {
  const credentials = createClientCredentials({ tls, trustedCasPem, expectServer: (id) => id === `spiffe://${OPERATOR_TD}/service/relay` });
  const client = new RelayServiceClient(dialTarget(address), credentials, {
    ...channelOptions(address),
    "grpc.keepalive_time_ms": DEAD_PEER_TIMEOUT_MS / 3,
    "grpc.keepalive_timeout_ms": DEAD_PEER_TIMEOUT_MS / 3,
  });
  const call = client.connect();
  return new Promise((resolve, reject) => {
    call.once("data", (response: ConnectResponse) => {
      if (response.accepted !== undefined) resolve({ client, call });
      else reject(new Error("the relay sent something other than `accepted` first"));
    });
    call.once("error", reject);
    call.write({ heartbeat: { sentUnixMs: BigInt(Date.now()) } });
  });
}

export async function runStreamsBench(options: { seconds: number; streamCounts?: number[] }): Promise<BenchResult> {
  const counts = [...(options.streamCounts ?? DEFAULT_STREAM_COUNTS)].sort((a, b) => a - b);
  const dataDir = mkdtempSync(join(tmpdir(), "ewii-bench-streams-"));
  const kekBytes = randomBytes(32);
  initOperator({ dataDir, operatorTrustDomain: OPERATOR_TD, kek: new Kek(Buffer.from(kekBytes)), services: ["ca", "relay"], admins: [], callers: [] });
  const ca = await startCaService(
    { listen: "127.0.0.1:0", data_dir: dataDir, svid_ttl_seconds: 3600, token_ttl_seconds: 900, log_level: "warn" },
    { logger: silentLogger(), kek: new Kek(Buffer.from(kekBytes)) },
  );
  createTenant(ca.context, TENANT, `spiffe://${OPERATOR_TD}/admin/bench`);
  const trustDomain = tenantTrustDomain(TENANT, OPERATOR_TD);
  const signer = signingCaOf(ca.context, activeCaOf(ca.context, trustDomain));
  const operatorBundlePem = readFileSync(credentialPaths(dataDir, "relay").bundle, "utf8");

  const relay = await spawnRelay(dataDir, {
    listen: "127.0.0.1:0",
    relay_id: "relay-bench",
    credentials_dir: credentialPaths(dataDir, "relay").dir,
    ca_address: ca.address,
    operator_trust_domain: OPERATOR_TD,
    heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
    dead_peer_timeout_ms: DEAD_PEER_TIMEOUT_MS,
    log_level: "warn",
  });
  const pid = relay.child.pid!;
  const streams: OpenStream[] = [];
  // Every stream sends a heartbeat per interval, spread over the interval.
  const heartbeatTimer = setInterval(() => {
    const sentUnixMs = BigInt(Date.now());
    for (const stream of streams) stream.call.write({ heartbeat: { sentUnixMs } });
  }, HEARTBEAT_INTERVAL_MS);

  const figures: Record<string, number> = { relay_rss_mib_at_0_streams: rssBytes(pid) / 1024 ** 2 };
  const budgets: BenchResult["budgets"] = [];
  // One key for every SVID keeps setup short. Each stream still has its own
  // certificate, serial and SPIFFE ID, and the relay keys streams on those.
  const keyPair = generateKeyPair();
  const privateKeyPem = privateKeyToPem(keyPair.privateKey);
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 3600_000);

  try {
    for (const target of counts) {
      const started = Date.now();
      const rampCpuStart = cpuSeconds(pid);
      while (streams.length < target) {
        const batch = Math.min(OPEN_CONCURRENCY, target - streams.length);
        const opened = await Promise.all(
          Array.from({ length: batch }, (_, i) => {
            const spiffeId = SpiffeId.fromParts(trustDomain, `/client/c${streams.length + i}`);
            const issued = issueX509Svid({ ca: signer, subjectPublicKeySpkiDer: keyPair.publicKeySpkiDer, spiffeId, notBefore, notAfter });
            return openStream(relay.address, { certChainPem: derToPem(issued.certDer, "CERTIFICATE"), privateKeyPem }, operatorBundlePem);
          }),
        );
        streams.push(...opened);
      }
      const rampSeconds = (Date.now() - started) / 1000;
      figures[`streams_opened_per_s_up_to_${target}`] = (target - (counts[counts.indexOf(target) - 1] ?? 0)) / rampSeconds;
      figures[`relay_cpu_percent_opening_up_to_${target}`] = ((cpuSeconds(pid) - rampCpuStart) / rampSeconds) * 100;

      // Let ramp-up garbage settle, then measure idle CPU over the window.
      await new Promise((done) => setTimeout(done, 2_000));
      const cpuStart = cpuSeconds(pid);
      const windowStart = Date.now();
      await new Promise((done) => setTimeout(done, Math.max(options.seconds, HEARTBEAT_INTERVAL_MS / 1000) * 1000));
      const cpuPercent = ((cpuSeconds(pid) - cpuStart) / ((Date.now() - windowStart) / 1000)) * 100;
      const rss = rssBytes(pid);
      figures[`relay_rss_mib_at_${target}_streams`] = rss / 1024 ** 2;
      figures[`relay_rss_kib_per_stream_at_${target}`] = (rss - figures.relay_rss_mib_at_0_streams * 1024 ** 2) / 1024 / target;
      figures[`relay_cpu_percent_idle_at_${target}_streams`] = cpuPercent;
      if (target === 10_000) budgets.push({ name: "relay RSS at 10,000 idle streams (MiB)", value: rss / 1024 ** 2, limit: RSS_BUDGET_BYTES / 1024 ** 2, ok: rss <= RSS_BUDGET_BYTES });
    }
  } finally {
    clearInterval(heartbeatTimer);
    for (const stream of streams) {
      stream.call.cancel();
      stream.client.close();
    }
    const exited = new Promise((done) => relay.child.once("exit", done));
    relay.child.kill("SIGTERM");
    await exited;
    await ca.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return { name: "streams", figures, budgets };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const secondsAt = argv.indexOf("--seconds");
  const streamsAt = argv.indexOf("--streams");
  const result = await runStreamsBench({
    seconds: secondsAt >= 0 ? Number(argv[secondsAt + 1]) : 5,
    streamCounts: streamsAt >= 0 ? argv[streamsAt + 1].split(",").map(Number) : undefined,
  });
  console.log(JSON.stringify(result, null, 2));
  process.exit(result.budgets.every((budget) => budget.ok) ? 0 : 1);
}
