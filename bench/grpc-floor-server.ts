/**
 * Child process of bench/grpc-floor.ts: a grpc-js server over mTLS whose
 * ExecuteQuery handler reads the caller's certificate and responds with
 * fixed columns, one chunk of seven rows and a summary, doing no other
 * work. Messages from the parent: {type: "start", tls}, {type: "cpu"}.
 * Replies: {type: "ready", port}, {type: "cpu", micros}.
 */
import * as grpc from "@grpc/grpc-js";
import { HubServiceService, type ExecuteQueryRequest, type ExecuteQueryResponse, type HubServiceServer } from "../gen/ewii/hub/v1/hub.js";
import type { Row } from "../gen/ewii/tunnel/v1/tunnel.js";

export type FloorServerRequest = { type: "start"; tls: { certChainPem: string; privateKeyPem: string; trustedCasPem: string } } | { type: "cpu" };
export type FloorServerReply = { type: "ready"; port: number } | { type: "cpu"; micros: number };

if (process.send === undefined) throw new TypeError("grpc-floor-server.ts must run as a child process with an IPC channel");

/** Seven rows shaped like one customer's invoices. */
const ROWS: Row[] = Array.from({ length: 7 }, (_, i) => ({
  values: [{ intValue: BigInt(100 + i) }, { stringValue: "2021-01-01 00:00:00" }, { stringValue: "Theodor-Heuss-Straße 34" }, { doubleValue: 1.98 + i }],
}));

function executeQuery(call: grpc.ServerWritableStream<ExecuteQueryRequest, ExecuteQueryResponse>): void {
  // The hub reads the peer certificate on every call, so the floor does too.
  call.getAuthContext();
  call.write({ columns: { names: ["invoice_id", "invoice_date", "billing_address", "total"], types: ["integer", "text", "text", "real"] } });
  call.write({ rows: { rows: ROWS } });
  call.write({ summary: { requestId: "", rowCount: 7n, byteCount: 0n, rowsSha256: "", rule: "", policyVersion: 0n, auditSequence: 0n, elapsedMs: 0 } });
  call.end();
}

process.on("message", (request: FloorServerRequest) => {
  if (request.type === "cpu") {
    const usage = process.cpuUsage();
    process.send?.({ type: "cpu", micros: usage.user + usage.system } satisfies FloorServerReply);
    return;
  }
  const server = new grpc.Server();
  const implementation: HubServiceServer = { executeQuery, listClients: (_call, callback) => callback(null, { clients: [] }) };
  server.addService(HubServiceService, implementation);
  const { tls } = request;
  const credentials = grpc.ServerCredentials.createSsl(Buffer.from(tls.trustedCasPem), [{ cert_chain: Buffer.from(tls.certChainPem), private_key: Buffer.from(tls.privateKeyPem) }], true);
  server.bindAsync("127.0.0.1:0", credentials, (err, port) => {
    if (err !== null) throw err;
    process.send?.({ type: "ready", port } satisfies FloorServerReply);
  });
});

// The parent's exit closes the IPC channel.
process.on("disconnect", () => process.exit(0));
