// The multi-version key space: per key, the list of its revisions since the last compaction; globally, the
// ordered event log that watchers replay. One object per key revision (small: 6 fields) is shared by both lists,
// keys and values are latin1 binary strings (see key-index.ts): a one-byte string costs its length plus a 16-byte
// header, where a Buffer costs a ~100-byte typed-array object plus its bytes outside the heap.
import assert from "node:assert";
import { KeyIndex } from "./key-index.js";

/** One version of one key. A tombstone (the key deleted at `mod`) has `value === null`. */
export interface KeyRevision {
  readonly key: string;
  readonly mod: number;
  readonly create: number;
  readonly version: number;
  readonly lease: number;
  /** The value as a binary (latin1) string. */
  readonly value: string | null;
}

export interface KeyHistory {
  readonly key: string;
  /** Ascending by `mod`; at most one entry per revision. */
  readonly revisions: KeyRevision[];
}

export class KeySpace {
  readonly index = new KeyIndex<KeyHistory>();
  /** Every change since the compacted revision, in revision order (a revision's changes are contiguous). */
  private events: KeyRevision[] = [];
  /** The store revision: a fresh store is at 1 (like etcd), the first write makes 2. */
  currentRevision = 1;
  /** Revisions below this are gone; reads at or above it are served. 0 = never compacted. */
  compactRevision = 0;

  /** The live revision of `key` at `atRevision`, or undefined when absent/deleted then. */
  get(key: string, atRevision: number): KeyRevision | undefined {
    const history = this.index.get(key);
    return history === undefined ? undefined : visibleAt(history, atRevision);
  }

  /** Visits live revisions of keys in [start, end) at `atRevision`, in key order, until `visit` returns false. */
  forEachLive(
    start: string,
    end: string | null,
    atRevision: number,
    visit: (kv: KeyRevision) => boolean | undefined,
  ): void {
    this.index.forEachInRange(start, end, (history) => {
      const kv = visibleAt(history, atRevision);
      return kv === undefined ? true : visit(kv);
    });
  }

  /**
   * Records a put at `revision` (the revision being written, = currentRevision + 1 until `commit`).
   * Returns the new revision record.
   */
  put(key: string, value: string, lease: number, revision: number): KeyRevision {
    const history = this.index.get(key);
    const previous = history?.revisions[history.revisions.length - 1];
    assert(previous === undefined || previous.mod < revision, "two changes of one key in one revision");
    const live = previous !== undefined && previous.value !== null ? previous : undefined;
    const record: KeyRevision = {
      key,
      mod: revision,
      create: live === undefined ? revision : live.create,
      version: live === undefined ? 1 : live.version + 1,
      lease,
      value,
    };
    // A literal one-element array: `[]` + push would reserve 17 slots, for 100,000 mostly single-revision keys.
    if (history === undefined) this.index.insert({ key, revisions: [record] });
    else history.revisions.push(record);
    this.events.push(record);
    return record;
  }

  /** Records the deletion of a live key at `revision`. Returns the tombstone. */
  delete(key: string, revision: number): KeyRevision {
    const history = this.index.get(key);
    assert(history !== undefined, "delete of an unknown key");
    const previous = history.revisions[history.revisions.length - 1];
    assert(previous !== undefined && previous.value !== null && previous.mod < revision, "delete of a dead key");
    const tombstone: KeyRevision = { key, mod: revision, create: 0, version: 0, lease: 0, value: null };
    history.revisions.push(tombstone);
    this.events.push(tombstone);
    return tombstone;
  }

  /** Makes `revision` the current revision (after its changes were recorded). */
  commit(revision: number): void {
    assert(revision === this.currentRevision + 1, "revisions advance one at a time");
    this.currentRevision = revision;
  }

  /** The live revision just before `record` (a watch event's prev_kv), if still kept. */
  previousOf(record: KeyRevision): KeyRevision | undefined {
    const history = this.index.get(record.key);
    if (history === undefined) return undefined;
    const position = upperBound(history.revisions, record.mod - 1) - 1;
    const previous = history.revisions[position];
    return previous !== undefined && previous.value !== null ? previous : undefined;
  }

  /** Events with fromRevision <= mod, whole revisions only, stopping once at least `maxEvents` were taken. */
  eventsFrom(fromRevision: number, maxEvents: number): KeyRevision[] {
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.events[mid]!.mod < fromRevision) lo = mid + 1;
      else hi = mid;
    }
    let end = Math.min(lo + maxEvents, this.events.length);
    // Never split a revision: extend to the end of the last revision taken.
    while (end > lo && end < this.events.length && this.events[end]!.mod === this.events[end - 1]!.mod) end++;
    return this.events.slice(lo, end);
  }

  /**
   * Drops history below `revision`: each key keeps its latest revision <= `revision` unless that is a tombstone
   * below `revision`;
   * keys left with nothing are removed. Events below `revision` are dropped from the log.
   */
  compact(revision: number): void {
    assert(revision > this.compactRevision && revision <= this.currentRevision, "compact revision out of range");
    this.compactRevision = revision;
    this.index.removeWhere((history) => {
      const revisions = history.revisions;
      const keepFrom = upperBound(revisions, revision) - 1;
      if (keepFrom < 0) return false;
      const atCompaction = revisions[keepFrom]!;
      // A tombstone exactly at `revision` stays: the event log keeps revision `revision` for watchers starting
      // there, and every logged event must have its record in a history (snapshots rely on it).
      const dropCount = atCompaction.value === null && atCompaction.mod < revision ? keepFrom + 1 : keepFrom;
      if (dropCount > 0) revisions.splice(0, dropCount);
      return revisions.length === 0;
    });
    let firstKept = 0;
    while (firstKept < this.events.length && this.events[firstKept]!.mod < revision) firstKept++;
    this.events = this.events.slice(firstKept);
  }

  /** All histories in key order and the event log (for snapshots). */
  dump(): { histories: KeyHistory[]; events: KeyRevision[] } {
    return { histories: this.index.all(), events: this.events };
  }

  /** Replaces the whole content (restore from a snapshot). */
  load(state: {
    currentRevision: number;
    compactRevision: number;
    histories: KeyHistory[];
    events: KeyRevision[];
  }): void {
    this.currentRevision = state.currentRevision;
    this.compactRevision = state.compactRevision;
    this.index.rebuild(state.histories);
    this.events = state.events;
  }

  get eventCount(): number {
    return this.events.length;
  }
}

/** The latest live revision of `history` with mod <= atRevision. */
export function visibleAt(history: KeyHistory, atRevision: number): KeyRevision | undefined {
  const revisions = history.revisions;
  const last = revisions[revisions.length - 1];
  // Fast path: most reads are at the current revision.
  if (last !== undefined && last.mod <= atRevision) return last.value === null ? undefined : last;
  const found = revisions[upperBound(revisions, atRevision) - 1];
  return found === undefined || found.value === null ? undefined : found;
}

/** The first position whose mod is > revision. */
function upperBound(revisions: readonly KeyRevision[], revision: number): number {
  let lo = 0;
  let hi = revisions.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (revisions[mid]!.mod <= revision) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
