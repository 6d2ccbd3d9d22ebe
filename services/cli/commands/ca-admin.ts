import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { RevocationTarget, Tenant } from "../../../gen/ewii/ca/v1/ca.js";
import { EwiiError } from "../../core/errors.js";
import { callUnary } from "../../core/grpc/index.js";
import { collectRevocationAcks, readRevocationSequences, redisConnectionFromConfig } from "../../core/revocation/index.js";
import { caClient, cliContext, type GlobalOptions } from "../connect.js";
import { printObject, printTable } from "../output.js";

function tenantRow(tenant: Tenant): (string | boolean)[] {
  return [tenant.name, tenant.trustDomain, tenant.enabled, tenant.createdAt?.toISOString() ?? "", tenant.rolloverPhase, tenant.caFingerprints.map((f) => f.slice(0, 16)).join(" ")];
}

const TENANT_HEADERS = ["name", "trust domain", "enabled", "created", "rollover", "CA fingerprints (SHA-256, first 16)"];

/** `ewii tenant`, `ewii token`, `ewii svid`, `ewii revoke`, `ewii bundle`, `ewii rollover`, `ewii crl`. */
export function registerCaAdminCommands(program: Command, globals: () => GlobalOptions): void {
  const tenant = program.command("tenant").description("create, list, show and disable tenants");
  tenant
    .command("create <name>")
    .description("create a tenant with its own trust domain and CA key")
    .action(async (name: string) => {
      const context = cliContext(globals());
      const client = caClient(context);
      const response = await callUnary(client.createTenant.bind(client), { name });
      printTable(TENANT_HEADERS, [tenantRow(response.tenant!)], { json: context.json, jsonValue: response.tenant });
    });
  tenant
    .command("list")
    .description("list every tenant")
    .action(async () => {
      const context = cliContext(globals());
      const client = caClient(context);
      const response = await callUnary(client.listTenants.bind(client), {});
      printTable(TENANT_HEADERS, response.tenants.map(tenantRow), { json: context.json, jsonValue: response.tenants });
    });
  tenant
    .command("get <name>")
    .description("show one tenant")
    .action(async (name: string) => {
      const context = cliContext(globals());
      const client = caClient(context);
      const response = await callUnary(client.getTenant.bind(client), { name });
      printTable(TENANT_HEADERS, [tenantRow(response.tenant!)], { json: context.json, jsonValue: response.tenant });
    });
  tenant
    .command("disable <name>")
    .description("disable a tenant and revoke all of its SVIDs")
    .action(async (name: string) => {
      const context = cliContext(globals());
      const client = caClient(context);
      const response = await callUnary(client.disableTenant.bind(client), { name });
      if (context.json) {
        printObject({ tenant: response.tenant, revocation: response.revocation }, { json: true });
        return;
      }
      printObject({ tenant: response.tenant?.name, enabled: response.tenant?.enabled, revocation_sequence: response.revocation?.sequence });
    });

  program
    .command("token")
    .description("join tokens for client enrollment")
    .command("create")
    .description("create a single-use join token for a tenant client")
    .requiredOption("--tenant <name>", "tenant the client belongs to")
    .requiredOption("--path <path>", 'SPIFFE ID path of the client, for example "/client/site-1"')
    .option("--ttl <seconds>", "token lifetime in seconds (default 900, at most 86400)", (v) => parseIntOption(v, "--ttl"))
    .action(async (options: { tenant: string; path: string; ttl?: number }) => {
      const context = cliContext(globals());
      const client = caClient(context);
      const response = await callUnary(client.createJoinToken.bind(client), { tenant: options.tenant, spiffeIdPath: options.path, ttlSeconds: options.ttl ?? 0 });
      if (context.json) {
        printObject({ token: response.token, spiffeId: response.spiffeId, expiresAt: response.expiresAt }, { json: true });
        return;
      }
      process.stdout.write(`join token for ${response.spiffeId} (single use, expires ${response.expiresAt?.toISOString()}):\n\n  ${response.token}\n\n`);
      process.stdout.write(`enroll the client with:\n  ewii client enroll --ca ${context.endpoints.ca} --token <token> --dir <identity folder>\n`);
    });

  program
    .command("svid")
    .description("issued SVIDs")
    .command("list")
    .description("list issued SVIDs, newest first")
    .option("--tenant <name>", "only this tenant's SVIDs")
    .option("--all", "include expired SVIDs")
    .action(async (options: { tenant?: string; all?: boolean }) => {
      const context = cliContext(globals());
      const client = caClient(context);
      const response = await callUnary(client.listSvids.bind(client), { tenant: options.tenant ?? "", includeExpired: options.all === true });
      printTable(
        ["serial", "SPIFFE ID", "tenant", "not after", "revoked", "issued by"],
        response.svids.map((svid) => [svid.serial, svid.spiffeId, svid.tenant, svid.notAfter?.toISOString(), svid.revoked, svid.issuedBy]),
        { json: context.json, jsonValue: response.svids },
      );
    });

  program
    .command("revoke")
    .description("revoke a SPIFFE ID, a serial, a path prefix or a whole tenant")
    .option("--spiffe-id <id>", "every SVID issued for this SPIFFE ID")
    .option("--serial <hex>", "one certificate by serial number")
    .option("--prefix <spiffe-id-prefix>", "every SPIFFE ID under this path prefix (a whole site)")
    .option("--tenant <name>", "every SVID of a tenant")
    .option("--reason <text>", "why, recorded with the revocation", "")
    .option("--redis <url>", "Redis URL to collect relay and hub acknowledgements from (default: EWII_REDIS_URL)")
    .option("--wait-ms <ms>", "how long to collect acknowledgements after Revoke returns, in milliseconds", (v) => parseIntOption(v, "--wait-ms"), 1000)
    .action(async (options: { spiffeId?: string; serial?: string; prefix?: string; tenant?: string; reason: string; redis?: string; waitMs: number }) => {
      const candidates: [flag: string, value: string | undefined, target: (value: string) => RevocationTarget][] = [
        ["--spiffe-id", options.spiffeId, (value) => ({ spiffeId: value })],
        ["--serial", options.serial, (value) => ({ serial: value })],
        ["--prefix", options.prefix, (value) => ({ pathPrefix: value })],
        ["--tenant", options.tenant, (value) => ({ tenant: value })],
      ];
      const given = candidates.filter(([, value]) => value !== undefined);
      if (given.length !== 1) {
        const found = given.length === 0 ? "none was given" : `got ${given.map(([flag]) => flag).join(" and ")}`;
        throw new EwiiError("ERR_USAGE", `revoke takes exactly one of --spiffe-id, --serial, --prefix or --tenant, but ${found}; run one revoke per target`);
      }
      const [, targetValue, toTarget] = given[0];
      const targets = [toTarget(targetValue!)];
      const context = cliContext(globals());
      const client = caClient(context);
      const redisUrl = options.redis ?? process.env.EWII_REDIS_URL;
      const call = () => callUnary(client.revoke.bind(client), { target: targets[0], reason: options.reason });
      const collected = redisUrl === undefined ? { result: await call(), acks: undefined } : await collectRevocationAcks(redisConnectionFromConfig({ url: redisUrl }), options.waitMs, call, (r) => Number(r.revocation!.sequence));
      const revocation = collected.result.revocation!;
      if (context.json && collected.acks === undefined) {
        printObject({ revocation }, { json: true });
        return;
      }
      if (context.json) {
        printObject({ revocation, acks: collected.acks }, { json: true });
        return;
      }
      printObject({
        sequence: revocation.sequence,
        target: JSON.stringify(revocation.target),
        trust_domain: revocation.trustDomain,
        revoked_at: revocation.revokedAt,
        revoked_by: revocation.revokedBy,
        expires_at: revocation.expiresAt,
      });
      if (collected.acks === undefined) {
        process.stdout.write("relay and hub acknowledgements need Redis: pass --redis <url> or set EWII_REDIS_URL\n");
        return;
      }
      process.stdout.write(`acknowledgements within ${options.waitMs} ms:\n`);
      printTable(
        ["node", "role", "streams closed", "sessions closed", "queries aborted", "at"],
        collected.acks.map((ack) => [ack.node_id, ack.role, ack.streams_closed, ack.sessions_closed, ack.queries_aborted, ack.at]),
      );
    });

  program
    .command("revocation-status")
    .description("show the revocation sequence each relay and hub last reported on Redis, next to the CA's")
    .option("--redis <url>", "Redis URL the relays and hubs report to (default: EWII_REDIS_URL)")
    .action(async (options: { redis?: string }) => {
      const redisUrl = options.redis ?? process.env.EWII_REDIS_URL;
      if (redisUrl === undefined) throw new EwiiError("ERR_USAGE", "revocation-status reads relay and hub reports from Redis: pass --redis <url> or set EWII_REDIS_URL");
      const context = cliContext(globals());
      const client = caClient(context);
      const latest = await callUnary(client.listRevocations.bind(client), { sinceSequence: 0n, limit: 1 });
      const beats = await readRevocationSequences(redisConnectionFromConfig({ url: redisUrl }));
      if (!context.json) process.stdout.write(`CA latest revocation sequence: ${latest.latestSequence}\n`);
      printTable(
        ["node", "role", "sequence", "behind", "stale", "reported at"],
        beats.map((beat) => [beat.node_id, beat.role, beat.sequence, Number(latest.latestSequence) - beat.sequence, beat.stale, beat.updated_at]),
        { json: context.json, jsonValue: { ca_latest_sequence: Number(latest.latestSequence), nodes: beats } },
      );
    });

  program
    .command("bundle")
    .description("trust bundles")
    .command("show <trust-domain>")
    .description("print a trust domain's bundle as the document itself (SPIFFE bundle JWKS or PEM), with or without --json")
    .option("--format <format>", "jwks or pem", "jwks")
    .action(async (trustDomain: string, options: { format: string }) => {
      if (options.format !== "jwks" && options.format !== "pem") throw new EwiiError("ERR_USAGE", `--format must be jwks or pem, got "${options.format}"`);
      const context = cliContext(globals());
      const client = caClient(context);
      const response = await callUnary(client.getTrustBundle.bind(client), { trustDomain });
      const bundle = response.bundle!;
      process.stdout.write(options.format === "pem" ? bundle.pem : JSON.stringify(JSON.parse(bundle.jwks), null, 2) + "\n");
    });

  const rollover = program.command("rollover").description("roll a tenant's CA: prepare, activate, retire");
  for (const phase of ["prepare", "activate", "retire"] as const) {
    const command = rollover.command(`${phase} <tenant>`).description(`${phase} the CA rollover of a tenant`);
    if (phase === "retire") command.option("--force", "retire although SVIDs signed by the previous CA are still valid");
    command.action(async (name: string, options: { force?: boolean }) => {
      const context = cliContext(globals());
      const client = caClient(context);
      const response =
        phase === "prepare"
          ? await callUnary(client.prepareRollover.bind(client), { tenant: name })
          : phase === "activate"
            ? await callUnary(client.activateRollover.bind(client), { tenant: name })
            : await callUnary(client.retireRollover.bind(client), { tenant: name, force: options.force === true });
      printTable(TENANT_HEADERS, [tenantRow(response.tenant!)], { json: context.json, jsonValue: response.tenant });
    });
  }

  program
    .command("crl <tenant>")
    .description("write the tenant's signed X.509 CRL (DER) to a file")
    .requiredOption("-o, --output <file>", "file to write the DER CRL to")
    .action(async (name: string, options: { output: string }) => {
      const context = cliContext(globals());
      const client = caClient(context);
      const response = await callUnary(client.getCrl.bind(client), { tenant: name });
      try {
        writeFileSync(options.output, response.crlDer);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
        throw new EwiiError("ERR_USAGE", `cannot write the CRL to ${resolve(options.output)} (${code}); pass -o with a file in an existing folder that this user can write to`, { cause: err });
      }
      if (context.json) printObject({ tenant: name, sequence: response.sequence, file: resolve(options.output), bytes: response.crlDer.length }, { json: true });
      else process.stdout.write(`wrote CRL of ${name} (revocation sequence ${response.sequence}) to ${options.output}\n`);
    });
}

export function parseIntOption(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new EwiiError("ERR_USAGE", `${flag} must be a whole number, got "${value}"`);
  return Number(value);
}
