// When a member snapshots its store. A snapshot encodes the whole store on the event loop (~1.3 us per key, and all
// members reach the same index together) and writes all of it to disk; what it saves is replaying, and keeping in
// memory, the log since the last one. So in a large store it is due once the data bytes logged since the last
// snapshot reach half its size: a snapshot then writes about 2 bytes per byte logged (more if the store grew), and
// the entries' data held since the last snapshot stays under half of it. Each entry also costs ~350-500 bytes of
// memory around its data, so a log of small entries is capped by count as well, at etcd 3.4's default interval.

export interface SnapshotPolicy {
  /** A snapshot is never due before this many entries were applied since the last one. */
  everyEntries: number;
  /**
   * Also wait until the entries applied since the last snapshot hold half as many bytes as it did (a large store),
   * or number MAX_ENTRIES_BETWEEN_SNAPSHOTS. Off when the interval was configured (VIGIE_SNAPSHOT_COUNT): tests want
   * snapshots at a known index.
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

/**
 * A scaled interval never exceeds this many entries (etcd 3.4's --snapshot-count): ~50 MB of memory at most for the
 * log, and ~2.5 s to replay it on a restart (a probe of 100,000 puts).
 */
export const MAX_ENTRIES_BETWEEN_SNAPSHOTS = 100_000;

export function snapshotDue(policy: SnapshotPolicy, since: SinceLastSnapshot): boolean {
  if (since.entries < policy.everyEntries) return false;
  if (!policy.scalesWithSize || since.entries >= MAX_ENTRIES_BETWEEN_SNAPSHOTS) return true;
  return since.entryBytes >= since.snapshotBytes * LOG_BYTES_PER_SNAPSHOT_BYTE;
}
