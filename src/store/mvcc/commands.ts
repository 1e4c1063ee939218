/**
 * The committed-command path of vigie's key space: the requests that travel through the Raft log and the
 * responses the state machine (`KvStore.apply`) returns. Shapes mirror etcd 3.4's protobuf messages
 * (`etcdserverpb.RangeRequest`, `PutRequest`, ...) with proto field names, so the HTTP gateway only maps
 * JSON <-> these objects: bytes are `Uint8Array`, int64 are `number` (safe integers), enums are their proto names.
 *
 * Which requests go through Raft (and why):
 *  - put, deleteRange, txn, compaction, leaseGrant, leaseRevoke: they change state; every replica applies them in
 *    log order. A txn whose branch only reads is still proposed (etcd does the same) so it is linearizable.
 *  - range: serve `KvStore.range()` locally (serializable), or after a ReadIndex round (linearizable). A `range`
 *    command is accepted by `apply` too, for callers that prefer to linearize a read through the log.
 *  - lease keepalive: LEADER-LOCAL, not replicated (etcd 3.4 behaviour, no checkpoints). The leader holds the
 *    expiry clock (`KvStore.leases.renew`); followers keep no deadlines that matter. When leadership moves, the new
 *    leader calls `KvStore.promoteLeases(extendMs)` so every lease gets a full TTL from its election on, and expiry
 *    is decided only by the leader (`KvStore.expiredLeases(nowMs)` -> the driver proposes `leaseRevoke`).
 *  - lease grant with `ID: 0`: the PROPOSER should pick the id (`KvStore.leases.proposeId()`), because apply must be
 *    deterministic; if a command still carries 0, apply picks one deterministically from the replicated state.
 */

/** A key/value at some revision; mirrors `mvccpb.KeyValue`. */
export interface KeyValue {
  key: Uint8Array;
  /** Revision of the last creation of this key (a delete then put starts a new generation). */
  create_revision: number;
  /** Revision of the last modification. */
  mod_revision: number;
  /** Number of modifications since creation (1 after the creating put); reset by delete. */
  version: number;
  value: Uint8Array;
  /** Attached lease id, 0 when none. */
  lease: number;
}

/** The store part of etcd's `ResponseHeader`; the driver/gateway adds cluster_id, member_id and raft_term. */
export interface ResponseHeader {
  revision: number;
}

export type SortOrder = "NONE" | "ASCEND" | "DESCEND";
export type SortTarget = "KEY" | "VERSION" | "CREATE" | "MOD" | "VALUE";

/**
 * `range_end` semantics like etcd: empty = only `key`; `"\0"` = every key >= `key` (so key "\0" + range_end "\0" =
 * all keys); otherwise the half-open interval [key, range_end). A prefix P is [P, prefixEnd(P)).
 */
export interface RangeRequest {
  key: Uint8Array;
  range_end?: Uint8Array;
  /** Max kvs returned; 0 = no limit. `more` tells whether there were more. */
  limit?: number;
  /** Read at this revision (<= 0 = current). Compacted -> CompactedError, above current -> FutureRevisionError. */
  revision?: number;
  sort_order?: SortOrder;
  sort_target?: SortTarget;
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
  min_mod_revision?: number;
  max_mod_revision?: number;
  min_create_revision?: number;
  max_create_revision?: number;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** True when `limit` cut the result. */
  more: boolean;
  /** Number of keys in the range (ignoring `limit`). */
  count: number;
}

export interface PutRequest {
  key: Uint8Array;
  value?: Uint8Array;
  lease?: number;
  prev_kv?: boolean;
  /** Keep the current value (the key must exist; `value` must be empty). */
  ignore_value?: boolean;
  /** Keep the current lease (the key must exist; `lease` must be 0). */
  ignore_lease?: boolean;
}

export interface PutResponse {
  header: ResponseHeader;
  prev_kv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Uint8Array;
  range_end?: Uint8Array;
  prev_kv?: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  prev_kvs: KeyValue[];
}

export type CompareResult = "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";
export type CompareTarget = "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE";

/** One txn guard; the field named by `target` holds the operand (etcd's `target_union`). */
export interface Compare {
  result: CompareResult;
  target: CompareTarget;
  key: Uint8Array;
  /** Compare every key in [key, range_end) (all must satisfy). */
  range_end?: Uint8Array;
  version?: number;
  create_revision?: number;
  mod_revision?: number;
  value?: Uint8Array;
  lease?: number;
}

/** etcd's `RequestOp` oneof: exactly one field is set. */
export type RequestOp =
  | { request_range: RangeRequest }
  | { request_put: PutRequest }
  | { request_delete_range: DeleteRangeRequest }
  | { request_txn: TxnRequest };

export type ResponseOp =
  | { response_range: RangeResponse }
  | { response_put: PutResponse }
  | { response_delete_range: DeleteRangeResponse }
  | { response_txn: TxnResponse };

export interface TxnRequest {
  compare?: Compare[];
  success?: RequestOp[];
  failure?: RequestOp[];
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
  /** Accepted for wire compatibility; compaction here is in memory and always immediate. */
  physical?: boolean;
}

export interface CompactionResponse {
  header: ResponseHeader;
}

export interface LeaseGrantRequest {
  /** Requested TTL in seconds. */
  TTL: number;
  /** 0 = let the server choose (see the note at the top of this file). */
  ID?: number;
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  ID: number;
  TTL: number;
  error: string;
}

export interface LeaseRevokeRequest {
  ID: number;
}

export interface LeaseRevokeResponse {
  header: ResponseHeader;
}

export interface LeaseKeepAliveResponse {
  header: ResponseHeader;
  ID: number;
  /** Renewed TTL in seconds. */
  TTL: number;
}

export interface LeaseTimeToLiveRequest {
  ID: number;
  keys?: boolean;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader;
  ID: number;
  /** Remaining seconds (rounded up); -1 when the lease is gone (etcd answers so instead of an error). */
  TTL: number;
  grantedTTL: number;
  keys: Uint8Array[];
}

export interface LeaseLeasesResponse {
  header: ResponseHeader;
  leases: { ID: number }[];
}

/** A command stored in one Raft entry's data (see `encodeCommand`). */
export type Command =
  | { type: "range"; request: RangeRequest }
  | { type: "put"; request: PutRequest }
  | { type: "deleteRange"; request: DeleteRangeRequest }
  | { type: "txn"; request: TxnRequest }
  | { type: "compaction"; request: CompactionRequest }
  | { type: "leaseGrant"; request: LeaseGrantRequest }
  | { type: "leaseRevoke"; request: LeaseRevokeRequest };

export type CommandType = Command["type"];

/** The response matching each command type. */
export interface CommandResponseMap {
  range: RangeResponse;
  put: PutResponse;
  deleteRange: DeleteRangeResponse;
  txn: TxnResponse;
  compaction: CompactionResponse;
  leaseGrant: LeaseGrantResponse;
  leaseRevoke: LeaseRevokeResponse;
}

export type CommandResponse = CommandResponseMap[CommandType];

/** etcd's limits (embed defaults): a txn holds at most 128 ops; a request at most 1.5 MiB. */
export const MAX_TXN_OPS = 128;
export const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
/** etcd's largest lease TTL in seconds. */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;

export { decodeCommand, encodeCommand } from "./codec.js";
