// What the driver needs from stable storage. The production implementation sits on the WAL and snapshot files
// (src/store/wal, src/store/snapshot); the driver depends only on this interface so its ordering rules
// (durable before send) are written once, here and in driver.ts.
import type { Entry, HardState, Snapshot } from "../raft/types.js";

export interface RecoveredState {
  /** The newest durable snapshot, or null when none was ever taken. */
  snapshot: Snapshot | null;
  hardState: HardState;
  /** Durable entries after the snapshot, in index order (a replaced suffix already resolved). */
  entries: Entry[];
}

export interface RaftPersistence {
  load(): Promise<RecoveredState>;
  /**
   * Appends `entries` (an append starting at or below the last index replaces the suffix from there) and records
   * `hardState` when non-null. When `sync` is true, resolves only once everything is on disk (fsync).
   */
  save(hardState: HardState | null, entries: readonly Entry[], sync: boolean): Promise<void>;
  /** Durably stores a snapshot (received from the leader or taken locally). */
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /** A durable snapshot covers the log up to `index`: segments entirely at or below it may be deleted. */
  releaseTo(index: number): Promise<void>;
  close(): Promise<void>;
}
