import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";
import { AuditServiceClient } from "../../gen/ewii/audit/v1/audit.js";
import { CAServiceClient } from "../../gen/ewii/ca/v1/ca.js";
import { HubServiceClient } from "../../gen/ewii/hub/v1/hub.js";
import { PolicyServiceClient } from "../../gen/ewii/policy/v1/policy.js";
import { RelayServiceClient } from "../../gen/ewii/relay/v1/relay.js";
import { operatorServiceChannel } from "../core/workload/operator-channel.js";
import { loadCredentials, type WorkloadCredentials } from "../core/workload/credentials.js";
import { credentialsDir, homeDir, readEndpoints, type Endpoints } from "./home.js";

/** Global options every command accepts. */
export interface GlobalOptions {
  home?: string;
  endpoints?: string;
  credentials?: string;
  json?: boolean;
}

export interface CliContext {
  home: string;
  endpoints: Endpoints;
  credentials: WorkloadCredentials;
  json: boolean;
}

/**
 * Resolves the home folder, the service addresses and the SVID the command
 * authenticates with: `--credentials DIR`, else `<home>/credentials/<defaultIdentity>`.
 */
export function cliContext(options: GlobalOptions, defaultIdentity = "admin"): CliContext {
  const home = homeDir(options.home);
  const endpoints = readEndpoints(home, options.endpoints);
  const credentials = loadCredentials(options.credentials ?? credentialsDir(home, defaultIdentity));
  currentContext = { home, endpoints, credentials, json: options.json === true };
  return currentContext;
}

/** Context of the running command, kept so that a failure can be explained after the call. One command runs per process. */
let currentContext: CliContext | undefined;

/**
 * Says what to check after a call failed with UNAVAILABLE. A TLS handshake
 * the server rejects looks the same as a server that is down, so the hint
 * names the credentials too. Operator services reject SVIDs from outside
 * the operator trust domain during the handshake, and the hint explains that.
 */
export function unavailableHint(): string {
  const context = currentContext;
  const addresses = "check that the service is running and that endpoints.json (or --endpoints FILE) has its address";
  if (context === undefined) return addresses;
  const spiffeId = context.credentials.spiffeId;
  const operatorTrustDomain = context.endpoints.operator_trust_domain;
  if (spiffeId.trustDomain !== operatorTrustDomain) {
    return `the credentials in ${context.credentials.dir} are for ${spiffeId.toString()}, but operator services accept only SVIDs of the operator trust domain ${operatorTrustDomain}; pass --credentials with an operator identity such as ${credentialsDir(context.home, "admin")}`;
  }
  return `${addresses}, and that the SVID in ${context.credentials.dir} is not expired or revoked`;
}

function channel(context: CliContext, address: string, service: string): [string, ChannelCredentials, ChannelOptions] {
  return operatorServiceChannel(address, context.credentials, context.endpoints.operator_trust_domain, service, { allowInstancePaths: true });
}

export const caClient = (context: CliContext): CAServiceClient => new CAServiceClient(...channel(context, context.endpoints.ca, "ca"));
export const policyClient = (context: CliContext): PolicyServiceClient => new PolicyServiceClient(...channel(context, context.endpoints.policy, "policy"));
export const auditClient = (context: CliContext): AuditServiceClient => new AuditServiceClient(...channel(context, context.endpoints.audit, "audit"));
export const hubClient = (context: CliContext): HubServiceClient => new HubServiceClient(...channel(context, context.endpoints.hub, "hub"));
export const relayClient = (context: CliContext, address: string): RelayServiceClient => new RelayServiceClient(...channel(context, address, "relay"));
