/**
 * The cost of gRPC alone: CPU time per call of a grpc-js mTLS server that
 * does nothing but respond to ExecuteQuery with three fixed messages
 * (bench/grpc-floor-server.ts, in its own process), under the loads the
 * query benchmark puts on the hub. It gives the floor under the hub's CPU
 * per query, which handles one such call plus three messages on its audit
 * and relay streams. No budget applies.
 *
 * Loads: N calls in flight for `seconds` each, and calls started at a fixed
 * rate (paced) for `seconds` each.
 *
 * Run alone: node --import tsx bench/grpc-floor.ts [seconds]
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { credentials } from "@grpc/grpc-js";
import { HubServiceClient } from "../gen/ewii/hub/v1/hub.js";
import { createTestCa, issueTestLeaf, tlsMaterial } from "../test/grpc/helpers.js";
import type { FloorServerReply, FloorServerRequest } from "./grpc-floor-server.js";
import type { BenchResult } from "./result.js";

const IN_FLIGHT = [1, 32];
const PACED_PER_SECOND = [370, 1_000];
const WARMUP_CALLS = 2_000;

function call(client: HubServiceClient): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.executeQuery({ tenant: "acme", client: "/client/bench", dataset: "chinook", queryId: "customer_invoices", params: {} });
    stream.on("data", () => undefined);
    stream.on("error", reject);
    stream.on("end", resolve);
  });
}

export async function runGrpcFloorBench(options: { seconds: number }): Promise<BenchResult> {
  const ca = await createTestCa("operator.example");
  const serverLeaf = await issueTestLeaf(ca, "/service/hub", { dnsName: "localhost" });
  const callerLeaf = await issueTestLeaf(ca, "/caller/reports");
  const child = fork(fileURLToPath(new URL("./grpc-floor-server.ts", import.meta.url)), [], { execArgv: process.execArgv, stdio: ["ignore", "ignore", "inherit", "ipc"] });
  const ask = async <T extends FloorServerReply["type"]>(request: FloorServerRequest, type: T): Promise<Extract<FloorServerReply, { type: T }>> => {
    child.send(request);
    const [reply] = (await once(child, "message")) as [FloorServerReply];
    if (reply.type !== type) throw new Error(`expected a ${type} reply from the floor server, got ${reply.type}`);
    return reply as Extract<FloorServerReply, { type: T }>;
  };

  const { port } = await ask({ type: "start", tls: tlsMaterial(serverLeaf, [ca]) }, "ready");
  const caller = tlsMaterial(callerLeaf, [ca]);
  const client = new HubServiceClient(`localhost:${port}`, credentials.createSsl(Buffer.from(caller.trustedCasPem), Buffer.from(caller.privateKeyPem), Buffer.from(caller.certChainPem)));
  const figures: Record<string, number> = {};
  try {
    for (let i = 0; i < WARMUP_CALLS; i++) await call(client);

    /** Runs `load`, which returns the calls it made, and records the server's CPU per call. */
    const measure = async (name: string, load: () => Promise<number>): Promise<void> => {
      const before = (await ask({ type: "cpu" }, "cpu")).micros;
      const calls = await load();
      const micros = (await ask({ type: "cpu" }, "cpu")).micros - before;
      figures[`${name}_calls_per_s`] = Math.round(calls / options.seconds);
      figures[`${name}_server_cpu_us_per_call`] = Math.round(micros / calls);
    };

    for (const inFlight of IN_FLIGHT) {
      await measure(`in_flight_${inFlight}`, async () => {
        let calls = 0;
        const deadline = performance.now() + options.seconds * 1000;
        await Promise.all(
          Array.from({ length: inFlight }, async () => {
            for (; performance.now() < deadline; calls++) await call(client);
          }),
        );
        return calls;
      });
    }
    for (const perSecond of PACED_PER_SECOND) {
      await measure(`paced_${perSecond}`, async () => {
        const started: Promise<void>[] = [];
        const start = performance.now();
        while (performance.now() < start + options.seconds * 1000) {
          const delayMs = start + (started.length * 1000) / perSecond - performance.now();
          if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
          started.push(call(client));
        }
        await Promise.all(started);
        return started.length;
      });
    }
  } finally {
    client.close();
    child.kill();
  }
  return { name: "grpc-floor", figures, budgets: [] };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await runGrpcFloorBench({ seconds: Number(process.argv[2] ?? "3") });
  for (const [name, value] of Object.entries(result.figures)) console.log(`${name}\t${value}`);
}
