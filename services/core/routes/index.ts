export { InMemoryRouteRegistry, RedisRouteRegistry } from "./registry.js";
export type { RouteEntry, RouteRegistry } from "./registry.js";
