export { DenySet, isUnderPrefix } from "./deny-set.js";
export type { DenyCheckSubject } from "./deny-set.js";
export { DEFAULT_PRUNE_INTERVAL_MS, RevocationFollower } from "./follower.js";
export type { RevocationFollowerOptions, RevocationSource } from "./follower.js";
export { InProcessRevocationBus } from "./bus.js";
export type { RevocationBus, RevocationBusEvents, RevocationHandler } from "./bus.js";
export { PUBLISH_TIMEOUT_MS, REVOCATION_CHANNEL, RedisRevocationBus } from "./redis-bus.js";
export type { RedisRevocationBusOptions } from "./redis-bus.js";
export { describeRedisTarget, redisConnectionFromConfig, redisConnectionSchema } from "./redis-connection.js";
export type { RedisConnection, RedisConnectionConfig, RedisConnector } from "./redis-connection.js";
export {
  collectRevocationAcks,
  readRevocationSequences,
  REVOCATION_ACK_CHANNEL,
  REVOCATION_SEQUENCE_KEY_PREFIX,
  RevocationReporter,
} from "./acks.js";
export type { RevocationAck, RevocationHeartbeat, RevocationNodeRole, RevocationReporterOptions } from "./acks.js";
