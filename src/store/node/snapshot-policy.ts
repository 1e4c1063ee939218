// When a member snapshots its store. A snapshot encodes the whole store on the event loop (~1.3 us per key, and all
// members reach the same index together) and writes all of it to disk; what it saves is replaying the log since the
// last one. So it is due once that log has grown as large as the snapshot it would replace: then a snapshot never
// writes more bytes than the entries it stands for (the rule Redis uses to rewrite its append-only file), the log on
// disk and in memory stays at most the size of the store, and a restart replays at most that much.

export interface SnapshotPolicy {
  /** A snapshot is never due before this many entries were applied since the last one. */
  everyEntries: number;
  /**
   * Also wait until the entries applied since the last snapshot hold as many bytes as it did (a large store). Off
   * when the interval was configured (VIGIE_SNAPSHOT_COUNT): tests want snapshots at a known index.
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

export function snapshotDue(policy: SnapshotPolicy, since: SinceLastSnapshot): boolean {
  if (since.entries < policy.everyEntries) return false;
  return !policy.scalesWithSize || since.entryBytes >= since.snapshotBytes;
}
