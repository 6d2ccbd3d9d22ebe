import assert from "node:assert/strict";
import { callUnary } from "../../services/core/grpc/index.js";
import { CaFixture, codeOf, rejection } from "./fixture.js";

/** Error messages of the CA reach gRPC callers and `ewii` users alike, so they name the CLI command. */
describe("ca error messages", () => {
  let ca: CaFixture;

  beforeEach(async () => {
    ca = new CaFixture();
    await ca.start();
    await ca.createTenant("globex");
  });

  afterEach(async () => {
    await ca.dispose();
  });

  function messageOf(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
  }

  it("token path without slash: code", async () => {
    const err = await rejection(ca.token("globex", "client/x"));
    assert.equal(codeOf(err), "ERR_SPIFFE_ID_PATH_INVALID");
  });

  it("token path without slash: names the rule", async () => {
    const err = await rejection(ca.token("globex", "client/x"));
    assert.match(messageOf(err), /spiffe_id_path "client\/x" must start with "\/"/);
  });

  it("token path without slash: no broken ID", async () => {
    const err = await rejection(ca.token("globex", "client/x"));
    assert.doesNotMatch(messageOf(err), /spiffe:\/\//);
  });

  it("token path of one slash: empty", async () => {
    const err = await rejection(ca.token("globex", "/"));
    assert.match(messageOf(err), /spiffe_id_path is empty/);
  });

  it("malformed token names the command", async () => {
    const err = await rejection(ca.enroll("ewii1.not-a-token"));
    assert.match(messageOf(err), /"ewii token create"/);
  });

  it("existing tenant names the command", async () => {
    const err = await rejection(ca.createTenant("globex"));
    assert.match(messageOf(err), /"ewii tenant get globex"/);
  });

  it("unknown serial names the command", async () => {
    const admin = ca.admin();
    const err = await rejection(callUnary(admin.revoke.bind(admin), { target: { serial: "deadbeef" }, reason: "" }));
    assert.match(messageOf(err), /"ewii svid list"/);
  });
});
