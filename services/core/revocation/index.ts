export { DenySet, isUnderPrefix } from "./deny-set.js";
export type { DenyCheckSubject } from "./deny-set.js";
export { RevocationFollower } from "./follower.js";
export type { RevocationFollowerOptions, RevocationSource } from "./follower.js";
