/**
 * Load child process for bench/revocation.ts: opens one Connect stream per
 * certificate it is sent, each over its own grpc-js channel and TLS
 * connection, and reports when a stream ends. A stream that ends is not
 * reopened. Messages are `LoadRequest` and `LoadReply` in revocation-ipc.ts.
 */
import "reflect-metadata";
import type { ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import { RelayServiceClient, type ConnectRequest, type ConnectResponse } from "../gen/ewii/relay/v1/relay.js";
import { channelOptions, createClientCredentials, dialTarget } from "../services/core/grpc/index.js";
import { monotonicMs, type LoadReply, type LoadRequest, type LoadStream } from "./revocation-ipc.js";

/** Attempts per stream before it counts as failed. */
const OPEN_ATTEMPTS = 3;
/** Time allowed for one attempt: TLS handshake plus the relay's `accepted`. */
const OPEN_TIMEOUT_MS = 60_000;
const PROGRESS_EVERY_STREAMS = 500;

interface OpenStream {
  client: RelayServiceClient;
  call: ClientDuplexStream<ConnectRequest, ConnectResponse>;
}

if (process.send === undefined) throw new TypeError("revocation-load.ts must run as a child process with an IPC channel");

/** Streams accepted and not yet ended. */
const open = new Set<OpenStream>();
let accepted = 0;

function reply(message: LoadReply): void {
  process.send?.(message);
}

/** Opens one stream and resolves once the relay accepted it; rejects on error or after OPEN_TIMEOUT_MS. */
function openStream(request: LoadRequest, stream: LoadStream): Promise<OpenStream> {
  const credentials = createClientCredentials({
    tls: { certChainPem: stream.certPem, privateKeyPem: request.privateKeyPem },
    trustedCasPem: request.operatorBundlePem,
    expectServer: (id) => id === `spiffe://${request.operatorTrustDomain}/service/relay`,
  });
  const client = new RelayServiceClient(dialTarget(stream.relayAddress), credentials, channelOptions(stream.relayAddress));
  const call = client.connect();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no accepted message from ${stream.relayAddress} within ${OPEN_TIMEOUT_MS} ms`)), OPEN_TIMEOUT_MS);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      call.cancel();
      client.close();
      reject(err);
    };
    const onData = (response: ConnectResponse): void => {
      // The relay replies to the opening heartbeat, possibly before it sends `accepted`.
      if (response.heartbeat !== undefined) return;
      call.off("data", onData);
      if (response.accepted === undefined) return fail(new Error("the relay sent something other than `accepted` or a heartbeat first"));
      clearTimeout(timer);
      call.off("error", fail);
      const opened = { client, call };
      open.add(opened);
      accepted++;
      watchClose(stream.spiffeId, opened);
      resolve(opened);
    };
    call.once("error", fail);
    call.on("data", onData);
    call.write({ heartbeat: { sentUnixMs: BigInt(Date.now()) } });
  });
}

/** Stamps the first 'error' or 'end' of an accepted stream and reports it. */
function watchClose(spiffeId: string, stream: OpenStream): void {
  let reported = false;
  const report = (code: number, details: string): void => {
    const atMs = monotonicMs();
    if (reported) return;
    reported = true;
    open.delete(stream);
    reply({ type: "closed", spiffeId, atMs, code, details });
    stream.client.close();
  };
  stream.call.on("error", (err: ServiceError) => report(err.code, err.details));
  stream.call.on("end", () => report(0, "stream ended"));
  // Replies such as heartbeats must be read, or the stream stalls under flow control.
  stream.call.on("data", () => undefined);
}

async function openAll(request: LoadRequest): Promise<void> {
  let next = 0;
  const failed: string[] = [];
  let firstError = "";
  const worker = async (): Promise<void> => {
    while (next < request.streams.length) {
      const stream = request.streams[next++];
      for (let attempt = 1; ; attempt++) {
        try {
          await openStream(request, stream);
          break;
        } catch (err) {
          if (attempt < OPEN_ATTEMPTS) continue;
          failed.push(stream.spiffeId);
          firstError ||= String(err);
          break;
        }
      }
      if ((accepted + failed.length) % PROGRESS_EVERY_STREAMS === 0) reply({ type: "progress", opened: accepted, failed: failed.length });
    }
  };
  await Promise.all(Array.from({ length: request.concurrency }, worker));

  // Each stream sends one heartbeat per interval, the interval the relay requests in `accepted`.
  setInterval(() => {
    const sentUnixMs = BigInt(Date.now());
    for (const stream of open) stream.call.write({ heartbeat: { sentUnixMs } });
  }, request.heartbeatIntervalMs).unref();
  reply({ type: "opened", opened: accepted, failedSpiffeIds: failed, firstError });
}

process.on("message", (request: LoadRequest) => {
  openAll(request).catch((err: unknown) => {
    process.stderr.write(`revocation-load: opening streams failed: ${String(err)}\n`);
    process.exit(1);
  });
});

// The parent's exit closes the IPC channel; closing the channels ends the streams.
process.on("disconnect", () => {
  for (const stream of open) stream.client.close();
  process.exit(0);
});
