import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { GrpcReflection } from "grpc-js-reflection-client";
import { channelOptions, dialTarget, splitFileDescriptorSet, DEFAULT_DESCRIPTOR_SET_PATH } from "../../services/core/grpc/index.js";
import { readFileSync } from "node:fs";
import { startFixture, type Fixture } from "./fixture.js";

const run = promisify(execFile);
const PYTHON = "/usr/bin/python3";
const PROBE = fileURLToPath(new URL("./reflection_probe.py", import.meta.url));
const REFLECTION_PROTO_ROOT = fileURLToPath(new URL("../../node_modules/@grpc/reflection/build/proto", import.meta.url));
const CA_SERVICE = "ewii.ca.v1.CAService";

interface ProbeResult {
  services: string[];
  methods: string[];
  files: string[];
}

describe("grpc reflection", () => {
  let fixture: Fixture;
  let dir: string;

  before(async () => {
    fixture = await startFixture();
    dir = await mkdtemp(join(tmpdir(), "ewii-grpc-reflection-"));
  });

  after(async () => {
    await fixture.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("splits the descriptor set into files", () => {
    const files = splitFileDescriptorSet(readFileSync(DEFAULT_DESCRIPTOR_SET_PATH));
    assert.ok(files.length >= 2, `expected several files, got ${files.length}`);
  });

  describe("python grpcio client", () => {
    let result: ProbeResult;

    before(async function () {
      try {
        await run(PYTHON, ["-c", "import grpc, grpc_tools"]);
      } catch {
        // The packages come from Debian (python3-grpcio, python3-grpc-tools);
        // without them there is no independent client to run.
        this.skip();
      }
      const material = await fixture.clientMaterial("/admin/alice");
      await writeFile(join(dir, "ca.pem"), material.trustedCasPem);
      await writeFile(join(dir, "cert.pem"), material.certChainPem);
      await writeFile(join(dir, "key.pem"), material.privateKeyPem);
      const { stdout } = await run(PYTHON, [
        PROBE,
        fixture.server.address,
        join(dir, "ca.pem"),
        join(dir, "cert.pem"),
        join(dir, "key.pem"),
        CA_SERVICE,
        REFLECTION_PROTO_ROOT,
      ]);
      result = JSON.parse(stdout) as ProbeResult;
    });

    it("lists the CA service", () => {
      assert.ok(result.services.includes(CA_SERVICE), `services: ${result.services.join(", ")}`);
    });

    it("describes the CA methods", () => {
      assert.ok(result.methods.includes("Enroll"), `methods: ${result.methods.join(", ")}`);
      assert.ok(result.methods.includes("Renew"), `methods: ${result.methods.join(", ")}`);
    });

    it("resolves the timestamp dependency", () => {
      assert.ok(result.files.includes("google/protobuf/timestamp.proto"), `files: ${result.files.join(", ")}`);
      assert.ok(result.files.includes("ewii/ca/v1/ca.proto"), `files: ${result.files.join(", ")}`);
    });
  });

  describe("grpc-js-reflection-client", () => {
    it("lists and describes the CA service", async () => {
      const material = await fixture.clientMaterial("/admin/alice");
      const target = dialTarget(fixture.server.address);
      const client = new GrpcReflection(target, fixture.credentialsFor(material), channelOptions(target));
      const services = await client.listServices();
      assert.ok(services.includes(CA_SERVICE), `services: ${services.join(", ")}`);
      const methods = (await client.listMethods(CA_SERVICE)).map((method) => method.name);
      assert.ok(methods.includes("Enroll"), `methods: ${methods.join(", ")}`);
    });
  });
});
