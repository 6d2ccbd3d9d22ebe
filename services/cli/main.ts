import "reflect-metadata";
import { status } from "@grpc/grpc-js";
import { Command, CommanderError } from "commander";
import { errorCodeOf } from "../core/errors.js";
import { registerCaAdminCommands } from "./commands/ca-admin.js";
import { registerDevCommand } from "./commands/dev.js";
import { registerPolicyAuditCommands } from "./commands/policy-audit.js";
import { registerQueryCommands } from "./commands/query.js";
import { registerServeCommands } from "./commands/serve.js";
import { unavailableHint, type GlobalOptions } from "./connect.js";
import { escapeControlCharacters } from "./output.js";

/** Builds the `ewii` command tree. */
export function buildProgram(): Command {
  const program = new Command("ewii")
    .description("Ewii: identity-verified, policy-checked, audited queries from operator services to data inside customer networks")
    .option("--home <dir>", "Ewii home folder with endpoints.json and credentials/ (default $EWII_HOME or .ewii/dev)")
    .option("--endpoints <file>", "JSON file with the service addresses (default <home>/endpoints.json)")
    .option("--credentials <dir>", "credential folder to authenticate with (default <home>/credentials/admin)")
    .option("--json", "print JSON for scripts instead of tables")
    .showHelpAfterError()
    .exitOverride();
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  registerPolicyAuditCommands(program, globals);
  registerServeCommands(program, globals);
  registerCaAdminCommands(program, globals);
  registerQueryCommands(program, globals);
  registerDevCommand(program, globals);
  return program;
}

function grpcStatusOf(err: unknown): number | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "number" ? err.code : undefined;
}

/** Explains a failed command in one line: the stable code when there is one, then the message. */
function describeFailure(err: unknown): string {
  const code = errorCodeOf(err) ?? (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string" && err.code.startsWith("ERR_") ? err.code : undefined);
  const details = typeof err === "object" && err !== null && "details" in err && typeof err.details === "string" ? err.details : undefined;
  const message = details ?? (err instanceof Error ? err.message : String(err));
  if (code === undefined && grpcStatusOf(err) === status.UNAVAILABLE) {
    // grpc-js ends connection failures with an empty "Resolution note:".
    const cause = message.replace(/\s*Resolution note:\s*$/, "").trim();
    return `ERR_UNAVAILABLE: ${cause}; ${unavailableHint()}`;
  }
  return code !== undefined && !message.startsWith(code) ? `${code}: ${message}` : message;
}

/** Exit code of a command called with invalid flags or arguments, as commander and most CLIs use. */
export const USAGE_EXIT_CODE = 2;

/** Runs the command line and returns the exit code: 0 on success, 2 on a usage error, 1 on any other failure. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    // Commander has already printed the problem and the help; its non-zero exits are all usage errors.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
    // Error details can carry text from a customer's client, so control characters are shown escaped.
    process.stderr.write(`ewii: ${escapeControlCharacters(describeFailure(err))}\n`);
    return errorCodeOf(err) === "ERR_USAGE" ? USAGE_EXIT_CODE : 1;
  }
}

/** Resolves once `stream` has handed every earlier write to the operating system. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || !stream.writable) return Promise.resolve();
  // Writes complete in order, so the callback of an empty write runs after all earlier ones.
  return new Promise((resolve) => stream.write("", () => resolve()));
}

/**
 * Exits with `code` after stdout and stderr are flushed. Exiting explicitly
 * stops open gRPC channels from keeping a finished command alive, but on
 * Linux writes to a pipe are asynchronous, and `process.exit` right after a
 * large write cuts the output at the pipe buffer (64 KiB).
 */
export async function exitAfterFlush(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("services/cli/main.ts")) {
  await exitAfterFlush(await main(process.argv));
}
