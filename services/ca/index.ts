// Public API of the CA service: server start, initialization, client
// enrollment, and the store and domain functions used by `ewii dev` and
// the benchmarks.
export { startCaService, CA_SERVICE_NAME, CA_IDENTITY_NAME } from "./server.js";
export type { CaServiceDeps, RunningCaService } from "./server.js";
export { caConfigSchema, loadCaConfig, CA_ENV_KEYS } from "./config.js";
export type { CaConfig } from "./config.js";
export { initOperator, openCaContext, caStorePath, CA_STORE_FILE } from "./init.js";
export type { InitOperatorOptions, InitOperatorResult, CaContextOptions } from "./init.js";
export {
  credentialPaths,
  issueOperatorCredential,
  operatorSpiffeId,
  renewOperatorCredentialFiles,
  writeCredentialFiles,
} from "./credentials.js";
export type { CredentialPaths, OperatorCredential, OperatorIdentityKind } from "./credentials.js";
export { Kek, loadKek, resolveKekFile, KEK_ENV_VAR, KEK_BYTES, DEFAULT_KEK_FILE_NAME } from "./kek.js";
export { enrollWithToken, pinCaRoot } from "./client.js";
export type { EnrollmentResult, PinnedCaRoot } from "./client.js";
export { noopRevocationPublisher } from "./revocation-publisher.js";
export type { RevocationPublisher } from "./revocation-publisher.js";
export { isRevoked, findRevocation, listRevocations, revoke } from "./revocations.js";
export { createTenant, disableTenant, tenantTrustDomain } from "./tenants.js";
export { createJoinToken, parseJoinToken } from "./tokens.js";
export { enroll, renew } from "./issuance.js";
export { createIssuanceBenchFixture } from "./bench.js";
export type { IssuanceBenchFixture } from "./bench.js";
export { CaErrorCode } from "./errors.js";
export type { CaContext } from "./context.js";
export type { CaStore } from "./store.js";
