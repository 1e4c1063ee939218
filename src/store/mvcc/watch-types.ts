// Watch request/response shapes (mirroring etcd's WatchCreateRequest / WatchResponse / mvccpb.Event).
import type { KeyValue, ResponseHeader } from "./commands.js";

export type WatchFilter = "NOPUT" | "NODELETE";

export interface WatchCreateRequest {
  key: Uint8Array;
  /** Same semantics as RangeRequest.range_end. */
  range_end?: Uint8Array;
  /** First revision to deliver (historical events are replayed, then live ones); <= 0 = from the next change. */
  start_revision?: number;
  /** Send an empty response with the current revision when nothing happened since the last progress tick. */
  progress_notify?: boolean;
  filters?: WatchFilter[];
  prev_kv?: boolean;
  /** Caller-chosen id (etcd lets clients pick one per stream); 0/absent = the hub picks a unique one. */
  watch_id?: number;
}

export interface WatchEvent {
  type: "PUT" | "DELETE";
  /** For DELETE only `key` and `mod_revision` are meaningful (like etcd). */
  kv: KeyValue;
  prev_kv?: KeyValue;
}

/**
 * One message on a watch stream. A response holds whole revisions only, in order, with no gaps.
 * `header.revision` is the store revision when the message was produced.
 */
export interface WatchResponse {
  header: ResponseHeader;
  watch_id: number;
  created: boolean;
  canceled: boolean;
  /** Set with `canceled` when the start revision (or the watcher's position) was compacted away. */
  compact_revision: number;
  cancel_reason: string;
  events: WatchEvent[];
}

export interface WatchLimits {
  /** A watcher whose consumer lags by more than this many undelivered events is cancelled (never stalls the store). */
  maxPendingEvents: number;
  /** Events read from the history log at a time while catching up (whole revisions may exceed it). */
  replayBatchEvents: number;
  /** Max revisions (with an event for the watcher) per history message: etcd's watchBatchMaxRevs, 1000. */
  replayBatchRevisions: number;
  /** Max concurrent watchers in one hub. */
  maxWatchers: number;
}

export const DEFAULT_WATCH_LIMITS: WatchLimits = {
  maxPendingEvents: 10_000,
  replayBatchEvents: 1_000,
  replayBatchRevisions: 1_000,
  maxWatchers: 100_000,
};
