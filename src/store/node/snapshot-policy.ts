// When a member snapshots its store. A snapshot encodes the whole store on the event loop (~1.3 us per key, and all
// members reach the same index together) and writes all of it to disk; what it saves is replaying, and keeping in
// memory, the log since the last one. So in a large store it is due once that log holds half as many bytes as the
// last snapshot: a snapshot then writes at most 2 bytes per byte logged since the last one, and the log kept on disk
// and in memory stays under half the store's size (each entry in memory also costs ~350-500 bytes around its data).

export interface SnapshotPolicy {
  /** A snapshot is never due before this many entries were applied since the last one. */
  everyEntries: number;
  /**
   * Also wait until the entries applied since the last snapshot hold half as many bytes as it did (a large store).
   * Off when the interval was configured (VIGIE_SNAPSHOT_COUNT): tests want snapshots at a known index.
   */
  scalesWithSize: boolean;
}

/** What was applied since the last snapshot, and that snapshot's size. */
export interface SinceLastSnapshot {
  entries: number;
  /** The data bytes of those entries. */
  entryBytes: number;
  /** The size of the last snapshot taken or received (0 when there is none). */
  snapshotBytes: number;
}

/** The log since the last snapshot may hold this fraction of its size before the next one is due. */
const LOG_BYTES_PER_SNAPSHOT_BYTE = 0.5;

export function snapshotDue(policy: SnapshotPolicy, since: SinceLastSnapshot): boolean {
  if (since.entries < policy.everyEntries) return false;
  return !policy.scalesWithSize || since.entryBytes >= since.snapshotBytes * LOG_BYTES_PER_SNAPSHOT_BYTE;
}
