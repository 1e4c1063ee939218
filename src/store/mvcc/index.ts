// Public surface of the key space for the driver (src/store/node.ts) and the HTTP gateway.
export type * from "./commands.js";
export { decodeCommand, encodeCommand, MAX_LEASE_TTL_SECONDS, MAX_REQUEST_BYTES, MAX_TXN_OPS } from "./commands.js";
export * from "./errors.js";
export { type ApplyResult, KvStore, type KvStoreOptions } from "./kv-store.js";
export { compareBytes, prefixRangeEnd } from "./ranges.js";
export type * from "./watch-types.js";
export { SLOW_WATCHER_REASON, Watcher, WatchLimitError } from "./watcher.js";
