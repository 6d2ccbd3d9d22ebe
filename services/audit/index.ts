// Public API of the audit service: the durable hash-chained log, its
// verification, queries, the gRPC service and the one-line record format.
export { AuditLog, DEFAULT_CHECKPOINT_EVERY_RECORDS, DEFAULT_CHECKPOINT_EVERY_SECONDS, LATEST_CHECKPOINT_FILE } from "./log.js";
export type { AuditLogOptions, AuditRecordInput, AppendListener } from "./log.js";
export { verifyAuditLog, recordToEntry } from "./verify.js";
export type { VerifyOptions, VerifyProblem, VerifyResult } from "./verify.js";
export { queryAuditLog, tailAuditLog, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT } from "./query.js";
export type { AuditQuery, TailOptions } from "./query.js";
export { formatRecord } from "./format.js";
export { verifyAuditClientSignature } from "./client-signature.js";
export { CHECKPOINT_PUBLIC_KEY_FILE, readCheckpointPublicKey } from "./checkpoint.js";
export { PARAMS_KEY_ENV, loadParamsKey } from "./params.js";
export { AuditErrorCode } from "./errors.js";
export { auditConfigSchema, loadAuditConfig, AUDIT_ENV_KEYS } from "./config.js";
export type { AuditConfig } from "./config.js";
export { AuditService, ADMIN_PATH_PREFIX } from "./service.js";
export { startAuditService, AUDIT_HEALTH_NAME } from "./server.js";
export type { AuditServiceDeps, RunningAuditService } from "./server.js";
