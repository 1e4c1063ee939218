// Public surface of the Raft core. Drivers import from here only; see types.ts for the contract.
export { decodeConfChange, encodeConfChange, messageFromJson, messageToJson, RaftDecodeError } from "./codec.js";
export { CompactedError, type DropReason, ProposalDroppedError, SnapshotOutOfDateError } from "./errors.js";
export { MAX_PENDING_READS } from "./leader.js";
export { entrySizeBytes, MemoryStorage } from "./memory-storage.js";
export { createPrng, randomInt } from "./prng.js";
export { type RaftCounters, RaftNode, TRANSFER_CONTEXT, zeroCounters } from "./raft-node.js";
export * from "./types.js";
