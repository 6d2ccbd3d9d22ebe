import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort, makeTempDir, runEwii, startEwii, type EwiiProcess } from "./helpers.js";

const run = promisify(execFile);
const PYTHON = "/usr/bin/python3";
const PROBE = fileURLToPath(new URL("./grpcurl_probe.py", import.meta.url));
const REFLECTION_PROTO_ROOT = fileURLToPath(new URL("../../node_modules/@grpc/reflection/build/proto", import.meta.url));
const CA_SERVICE = "ewii.ca.v1.CAService";

interface ProbeResult {
  services: string[];
  methods: string[];
  health: string;
}

// The same calls as `grpcurl -cert … -key … -cacert … localhost:PORT list`
// and `describe`, made by Python grpcio (grpcurl is not installed here).
describe("ca reflection at localhost", function () {
  this.timeout(120_000);
  let dir: ReturnType<typeof makeTempDir>;
  let ca: EwiiProcess | undefined;
  let result: ProbeResult;

  before(async function () {
    try {
      await run(PYTHON, ["-c", "import grpc, grpc_tools"]);
    } catch {
      // Debian's python3-grpcio and python3-grpc-tools are the independent client; without them there is nothing to run.
      this.skip();
    }
    dir = makeTempDir("reflection");
    const dataDir = join(dir.path, "prod");
    const init = await runEwii(["init", "--data-dir", dataDir]);
    assert.equal(init.code, 0, init.stderr);
    const port = await freePort();
    ca = startEwii(["ca", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`]);
    await ca.waitForOutput("gRPC server listening");

    const admin = join(dataDir, "credentials", "admin");
    const probe = await run(PYTHON, [PROBE, `localhost:${port}`, join(admin, "bundle.pem"), join(admin, "svid.pem"), join(admin, "key.pem"), CA_SERVICE, REFLECTION_PROTO_ROOT]);
    result = JSON.parse(probe.stdout) as ProbeResult;
  });

  after(async () => {
    await ca?.stop();
    dir?.remove();
  });

  it("lists the CA service", () => {
    assert.ok(result.services.includes(CA_SERVICE), `services: ${result.services.join(", ")}`);
  });

  it("describes the CA methods", () => {
    for (const method of ["Enroll", "Renew", "CreateTenant", "Revoke", "GetTrustBundle"]) {
      assert.ok(result.methods.includes(method), `methods: ${result.methods.join(", ")}`);
    }
  });

  it("health reports SERVING", () => {
    assert.equal(result.health, "SERVING");
  });
});
