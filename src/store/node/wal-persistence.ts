// RaftPersistence on the WAL (src/store/wal) and its snapshot files. A hard state whose only change is the commit
// index needs no fsync (Raft recomputes commit after a crash), so it is kept here and written with the next synced
// batch instead of costing an fdatasync of its own.
import type { Logger } from "../../log.js";
import type { Entry, HardState, Snapshot } from "../raft/types.js";
import { Wal } from "../wal/wal.js";
import type { RaftPersistence, RecoveredState } from "./persistence.js";

/**
 * A few small puts (one put of a 100-byte value is a ~180-byte batch): a sequential writer's batches sync inline.
 * Under 64 concurrent clients three quarters of the batches are larger (median 3.2 KB) and go to the thread pool,
 * so the loop reads and proposes the next requests during the fsync; syncing those inline too cost throughput.
 */
const INLINE_SYNC_MAX_BYTES = 1024;

export class WalPersistence implements RaftPersistence {
  private deferredHardState: HardState | null = null;

  private constructor(
    private readonly wal: Wal,
    private readonly recovered: RecoveredState,
  ) {}

  static async open(dataDir: string, logger: Logger, keepTailEntries: number): Promise<WalPersistence> {
    // The driver hands over one batch per turn of its loop and waits for it: syncing a small one inline saves two
    // thread-pool round trips (see WalOptions.inlineSyncMaxBytes).
    const replay = await Wal.open(dataDir, { logger, keepTailEntries, inlineSyncMaxBytes: INLINE_SYNC_MAX_BYTES });
    const snapshotIndex = replay.snapshot?.metadata.index ?? 0;
    // Commit-only hard states are not synced (see above): the snapshot proves at least its index was committed.
    const hardState = { ...replay.hardState, commit: Math.max(replay.hardState.commit, snapshotIndex) };
    return new WalPersistence(replay.wal, { snapshot: replay.snapshot, hardState, entries: replay.entries });
  }

  async load(): Promise<RecoveredState> {
    return this.recovered;
  }

  async save(hardState: HardState | null, entries: readonly Entry[], sync: boolean): Promise<void> {
    if (!sync && entries.length === 0) {
      if (hardState !== null) this.deferredHardState = hardState;
      return;
    }
    const state = hardState ?? this.deferredHardState;
    this.deferredHardState = null;
    await this.wal.append(entries, state);
  }

  saveSnapshot(snapshot: Snapshot): Promise<void> {
    return this.wal.saveSnapshot(snapshot);
  }

  async releaseTo(index: number): Promise<void> {
    await this.wal.releaseTo(index);
  }

  async close(): Promise<void> {
    if (this.deferredHardState !== null) {
      await this.wal.append([], this.deferredHardState).catch(() => {});
      this.deferredHardState = null;
    }
    await this.wal.close();
  }
}
