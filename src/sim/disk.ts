// A simulated disk under a RaftStorage: writes land in the "page cache" (the live MemoryStorage the core reads)
// at once, and reach the durable copy only on sync(). A crash keeps the durable copy and loses everything else —
// exactly what a real process loses when it dies between write() and fsync().
import type { ConfState, Entry, HardState, Snapshot } from "../store/raft/index.js";
import { MemoryStorage } from "../store/raft/index.js";

type Write = (storage: MemoryStorage) => void;

export class SimDisk {
  live: MemoryStorage;
  private durable: MemoryStorage;
  private unsynced: Write[] = [];
  syncs = 0;

  constructor() {
    this.live = new MemoryStorage();
    this.durable = new MemoryStorage();
  }

  private write(op: Write): void {
    op(this.live);
    this.unsynced.push(op);
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    this.write((s) => s.append(entries));
  }

  setHardState(hardState: HardState): void {
    this.write((s) => s.setHardState(hardState));
  }

  applySnapshot(snapshot: Snapshot): void {
    this.write((s) => s.applySnapshot(snapshot));
  }

  /** Snapshot files are written and fsynced on their own (with whatever else is pending, as fsync(dir) would). */
  createSnapshotAndCompact(index: number, confState: ConfState, data: Uint8Array, compactTo: number): void {
    this.sync();
    this.write((s) => {
      s.createSnapshot(index, confState, data);
      s.compact(compactTo);
    });
    this.sync();
  }

  /** Writes that a crash now would lose. */
  get unsyncedWrites(): number {
    return this.unsynced.length;
  }

  sync(): void {
    for (const op of this.unsynced) op(this.durable);
    this.unsynced = [];
    this.syncs++;
  }

  /** The process died: only synced writes survive. Returns how many writes were lost. */
  crash(): number {
    const lost = this.unsynced.length;
    this.unsynced = [];
    this.live = clone(this.durable);
    return lost;
  }
}

/** A copy of a storage through its public surface (entries behind the snapshot are not needed after a restart). */
function clone(source: MemoryStorage): MemoryStorage {
  const copy = new MemoryStorage();
  const snapshot = source.snapshot();
  if (snapshot.metadata.index > 0) copy.applySnapshot(snapshot);
  const from = Math.max(source.firstIndex(), snapshot.metadata.index + 1);
  const last = source.lastIndex();
  if (from <= last) copy.append(source.entries(from, last + 1, Number.MAX_SAFE_INTEGER));
  copy.setHardState(source.initialState().hardState);
  return copy;
}
