// In-memory RaftStorage (the analogue of etcd's MemoryStorage). The production driver keeps one as the cache of
// its WAL; the simulator wraps one to model fsync. The core only reads it; the driver writes it after persisting.
import assert from "node:assert/strict";
import { CompactedError, SnapshotOutOfDateError } from "./errors.js";
import type { ConfState, Entry, HardState, RaftStorage, Snapshot } from "./types.js";

const EMPTY_CONF: ConfState = { voters: [], learners: [] };

/** Rough size of an entry in bytes, used for every byte limit (data plus a fixed header). */
export function entrySizeBytes(entry: Entry): number {
  return entry.data.length + 16;
}

export class MemoryStorage implements RaftStorage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = { metadata: { index: 0, term: 0, confState: EMPTY_CONF }, data: new Uint8Array(0) };
  /** Index and term of the last compacted entry (the log's sentinel); entries[i] has index offset + 1 + i. */
  private offset = 0;
  private offsetTerm = 0;
  private log: Entry[] = [];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.log.length;
  }

  term(i: number): number {
    if (i < this.offset) throw new CompactedError(i, this.offset + 1);
    if (i === this.offset) return this.offsetTerm;
    const entry = this.log[i - this.offset - 1];
    if (!(entry !== undefined)) assert.fail(`storage.term(${i}) beyond lastIndex ${this.lastIndex()}`);
    return entry.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.offset) throw new CompactedError(lo, this.offset + 1);
    if (!(lo <= hi && hi <= this.lastIndex() + 1))
      assert.fail(`storage.entries(${lo}, ${hi}) out of [1, ${this.lastIndex()}]`);
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.log[i - this.offset - 1]!;
      bytes += entrySizeBytes(entry);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Appends entries; those at or below lastIndex replace the stored suffix (a new leader overwrote it). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (!(first <= this.lastIndex() + 1)) assert.fail(`append at ${first} leaves a gap after ${this.lastIndex()}`);
    // Entries already compacted are committed and identical: skip them.
    let skip = 0;
    while (skip < entries.length && entries[skip]!.index <= this.offset) skip++;
    if (skip === entries.length) return;
    const from = entries[skip]!.index;
    this.log.length = from - this.offset - 1;
    for (let i = skip; i < entries.length; i++) this.log.push(entries[i]!);
  }

  /** Replaces everything with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    if (index <= this.snap.metadata.index) throw new SnapshotOutOfDateError(index, this.snap.metadata.index);
    this.snap = snapshot;
    this.offset = index;
    this.offsetTerm = snapshot.metadata.term;
    this.log = [];
  }

  /** Records a snapshot of the local state machine at applied index `index` (which must still be in the log). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    const current = this.snap.metadata.index;
    if (index <= current) throw new SnapshotOutOfDateError(index, current);
    if (!(index <= this.lastIndex())) assert.fail(`createSnapshot(${index}) beyond lastIndex ${this.lastIndex()}`);
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  /** Drops entries up to and including `index`, which the snapshot must cover. */
  compact(index: number): void {
    if (!(index <= this.snap.metadata.index))
      assert.fail(`compact(${index}) beyond snapshot ${this.snap.metadata.index}`);
    if (index <= this.offset) return;
    const term = this.term(index);
    this.log = this.log.slice(index - this.offset);
    this.offset = index;
    this.offsetTerm = term;
  }
}
