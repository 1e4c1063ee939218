// The node's view of its log: what the driver already persisted (RaftStorage) followed by the "unstable" tail
// (entries or a snapshot handed out in a Ready but not yet acknowledged by advance()), plus commit/applied marks.
import assert from "node:assert/strict";
import { CompactedError } from "./errors.js";
import { entrySizeBytes } from "./memory-storage.js";
import type { Entry, RaftStorage, Snapshot } from "./types.js";

export class RaftLog {
  /** A snapshot received from the leader and not yet persisted. */
  unstableSnapshot: Snapshot | null = null;
  /** Entries not yet persisted; unstableEntries[i] has index unstableOffset + i. */
  unstableEntries: Entry[] = [];
  unstableOffset: number;
  committed: number;
  /** Highest index the driver has applied (acknowledged through advance()). */
  applied: number;

  constructor(
    readonly storage: RaftStorage,
    applied: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstableOffset = last + 1;
    // A restarted node has applied at least its snapshot; the hard state's commit is set by the caller.
    this.committed = first - 1;
    this.applied = Math.max(applied, first - 1);
  }

  firstIndex(): number {
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.metadata.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstableEntries.length > 0) return this.unstableOffset + this.unstableEntries.length - 1;
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.metadata.index;
    return this.storage.lastIndex();
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert.ok(term !== null, "the last entry's term is always known");
    return term;
  }

  /** The term of entry i, or null when i is compacted away or beyond the log. */
  term(i: number): number | null {
    if (i > this.lastIndex()) return null;
    if (i >= this.unstableOffset && this.unstableEntries.length > 0)
      return this.unstableEntries[i - this.unstableOffset]!.term;
    const snap = this.unstableSnapshot;
    if (snap !== null) {
      if (i === snap.metadata.index) return snap.metadata.term;
      if (i < snap.metadata.index) return null;
    }
    if (i < this.storage.firstIndex() - 1) return null;
    try {
      return this.storage.term(i);
    } catch (error) {
      if (error instanceof CompactedError) return null;
      throw error;
    }
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Appends after truncating any conflicting unstable/stable suffix. Never touches committed entries. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    if (!(first > this.committed)) assert.fail(`append at ${first} would overwrite committed ${this.committed}`);
    if (!(first <= this.lastIndex() + 1)) assert.fail(`append at ${first} leaves a gap after ${this.lastIndex()}`);
    if (first === this.unstableOffset + this.unstableEntries.length) {
      for (const e of entries) this.unstableEntries.push(e);
    } else if (first <= this.unstableOffset) {
      // Replaces (part of) the persisted log too: the driver's storage.append truncates it.
      this.unstableOffset = first;
      this.unstableEntries = entries.slice();
    } else {
      this.unstableEntries.length = first - this.unstableOffset;
      for (const e of entries) this.unstableEntries.push(e);
    }
  }

  /** Follower side of AppendEntries: returns the new last index, or null when (index, logTerm) does not match. */
  maybeAppend(index: number, logTerm: number, committed: number, entries: readonly Entry[]): number | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + entries.length;
    let conflictAt = -1;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      if (!this.matchTerm(e.index, e.term)) {
        conflictAt = k;
        break;
      }
    }
    if (conflictAt >= 0) {
      const conflictIndex = entries[conflictAt]!.index;
      if (!(conflictIndex > this.committed))
        assert.fail(`entry ${conflictIndex} conflicts with committed ${this.committed}`);
      this.append(entries.slice(conflictAt));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** The largest index <= index whose term is <= term (the conflict hint of fast backtracking). */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; ; i--) {
      const t = this.term(i);
      if (t === null) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (!(index <= this.lastIndex())) assert.fail(`commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Entries in [lo, hi) up to maxBytes (at least one), or null when lo is compacted. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] | null {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return null;
    if (!(hi <= this.lastIndex() + 1)) assert.fail(`slice(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    let out: Entry[] = [];
    let bytes = 0;
    if (lo < this.unstableOffset) {
      const storedHi = Math.min(hi, this.unstableOffset);
      try {
        out = this.storage.entries(lo, storedHi, maxBytes);
      } catch (error) {
        if (error instanceof CompactedError) return null;
        throw error;
      }
      if (out.length < storedHi - lo) return out;
      for (const e of out) bytes += entrySizeBytes(e);
    }
    for (let i = Math.max(lo, this.unstableOffset); i < hi; i++) {
      const e = this.unstableEntries[i - this.unstableOffset]!;
      bytes += entrySizeBytes(e);
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Committed entries the driver has not applied yet (none while a snapshot is pending). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (this.unstableSnapshot !== null || this.applied >= this.committed) return [];
    return this.slice(this.applied + 1, this.committed + 1, maxBytes) ?? [];
  }

  hasNextCommittedEntries(): boolean {
    return this.unstableSnapshot === null && this.applied < this.committed;
  }

  appliedTo(index: number): void {
    if (!(index <= this.committed && index >= this.applied))
      assert.fail(`applied ${index} outside [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }

  /** The driver persisted entries up to (index, term): drop them from the unstable tail. */
  stableTo(index: number, term: number): void {
    const k = index - this.unstableOffset;
    if (k < 0 || k >= this.unstableEntries.length || this.unstableEntries[k]!.term !== term) return;
    this.unstableEntries = this.unstableEntries.slice(k + 1);
    this.unstableOffset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.unstableSnapshot !== null && this.unstableSnapshot.metadata.index === index) this.unstableSnapshot = null;
  }

  /** Installs a leader's snapshot: the whole log is replaced by it. */
  restore(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    if (!(index > this.committed)) assert.fail(`restore at ${index} below commit ${this.committed}`);
    this.unstableSnapshot = snapshot;
    this.unstableEntries = [];
    this.unstableOffset = index + 1;
    this.committed = index;
  }

  /** The snapshot to send to a peer whose entries were compacted: a pending one, else the stored one. */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }
}
