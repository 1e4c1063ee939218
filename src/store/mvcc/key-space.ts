// The multi-version key space: per key, the list of its revisions since the last compaction; globally, the
// ordered event log that watchers replay. One object per key revision (small: 6 fields) is shared by both lists,
// keys and values are latin1 binary strings (see key-index.ts): a one-byte string costs its length plus a 16-byte
// header, where a Buffer costs a ~100-byte typed-array object plus its bytes outside the heap.
// Memory: most keys have a single kept revision (compaction trims the rest), so the index holds that revision
// itself; only a key with several kept revisions gets a RevisionList. A list per key (an object, an array and its
// backing store, ~100 bytes) was a quarter of the heap of an agent holding 100,000 keys.
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

/** A key's kept revisions (the snapshot format's unit). */
export interface KeyHistory {
  readonly key: string;
  /**
   * Ascending by `mod`. Usually one entry per revision; a txn that puts a key and deletes it with a range_end of
   * "\0" (etcd's duplicate check lets that pass) leaves several entries of one revision, in the order written.
   */
  readonly revisions: KeyRevision[];
}

/**
 * A key's kept revisions as the index holds them: a key with a single kept revision (most keys) is that revision
 * itself, with no list around it (a snapshot of 100,000 keys then wraps none of them).
 */
export type KeptRevisions = KeyHistory | KeyRevision;

/** The kept revisions of a key that has more than one (ascending by `mod`). */
class RevisionList implements KeyHistory {
  constructor(
    readonly key: string,
    readonly revisions: KeyRevision[],
  ) {}
}

/** What the index holds per key: its only kept revision, or the list of several. */
type IndexEntry = KeyRevision | RevisionList;

function latestOf(entry: IndexEntry): KeyRevision {
  return entry instanceof RevisionList ? entry.revisions[entry.revisions.length - 1]! : entry;
}

/** The compact entry for a key's kept revisions (none: no entry). */
function entryFor(key: string, revisions: KeyRevision[]): IndexEntry | undefined {
  if (revisions.length === 0) return undefined;
  return revisions.length === 1 ? revisions[0]! : new RevisionList(key, revisions);
}

export class KeySpace {
  readonly index = new KeyIndex<IndexEntry>();
  /** Every change since the compacted revision, in revision order (a revision's changes are contiguous). */
  private events: KeyRevision[] = [];
  /** The store revision: a fresh store is at 1 (like etcd), the first write makes 2. */
  currentRevision = 1;
  /** Revisions below this are gone; reads at or above it are served. 0 = never compacted. */
  compactRevision = 0;
  /**
   * A compaction at revision 0 succeeded (possible only on a store never compacted). etcd starts with compaction
   * revision -1: the first `compaction {revision: 0}` succeeds and later ones are "compacted"; `compactRevision`
   * starts at 0, so this flag tells the two apart. Not in snapshots: a member restored from one taken in between
   * answers a second `revision: 0` compaction with success instead of "compacted" (both leave the store unchanged).
   */
  private compactedAtZero = false;

  /**
   * etcd's compaction revision, as its compaction, txn range checks and watchers compare with it: -1 until the first
   * compaction (one at revision 0 included), then the compacted revision.
   */
  get etcdCompactRevision(): number {
    return this.compactRevision === 0 && !this.compactedAtZero ? -1 : this.compactRevision;
  }

  /** The one compaction at revision 0 etcd allows: it removes nothing (see compactedAtZero). */
  compactAtZero(): void {
    assert(this.etcdCompactRevision === -1, "compaction at 0 after a compaction");
    this.compactedAtZero = true;
  }

  /** The live revision of `key` at `atRevision`, or undefined when absent/deleted then. */
  get(key: string, atRevision: number): KeyRevision | undefined {
    const entry = this.index.get(key);
    return entry === undefined ? undefined : visibleAt(entry, atRevision);
  }

  /** Visits live revisions of keys in [start, end) at `atRevision`, in key order, until `visit` returns false. */
  forEachLive(
    start: string,
    end: string | null,
    atRevision: number,
    visit: (kv: KeyRevision) => boolean | undefined,
  ): void {
    this.index.forEachInRange(start, end, (entry) => {
      const kv = visibleAt(entry, atRevision);
      return kv === undefined ? true : visit(kv);
    });
  }

  /**
   * Records a put at `revision` (the revision being written, = currentRevision + 1 until `commit`).
   * Returns the new revision record.
   */
  put(key: string, value: string, lease: number, revision: number): KeyRevision {
    const entry = this.index.get(key);
    const previous = entry === undefined ? undefined : latestOf(entry);
    // In one revision a put may follow only a delete (see KeyHistory): two puts of a key are a duplicate key.
    assert(
      previous === undefined || previous.mod < revision || previous.value === null,
      "two puts of one key in one revision",
    );
    const live = previous !== undefined && previous.value !== null ? previous : undefined;
    const record: KeyRevision = {
      key,
      mod: revision,
      create: live === undefined ? revision : live.create,
      version: live === undefined ? 1 : live.version + 1,
      lease,
      value,
    };
    this.append(entry, record);
    return record;
  }

  /** Records the deletion of a live key at `revision`. Returns the tombstone. */
  delete(key: string, revision: number): KeyRevision {
    const entry = this.index.get(key);
    assert(entry !== undefined, "delete of an unknown key");
    const previous = latestOf(entry);
    assert(previous.value !== null && previous.mod <= revision, "delete of a dead key");
    const tombstone: KeyRevision = { key, mod: revision, create: 0, version: 0, lease: 0, value: null };
    this.append(entry, tombstone);
    return tombstone;
  }

  /** Adds `record` as the newest revision of its key (whose entry is `entry`) and to the event log. */
  private append(entry: IndexEntry | undefined, record: KeyRevision): void {
    if (entry === undefined) this.index.insert(record);
    else if (entry instanceof RevisionList) entry.revisions.push(record);
    // A literal two-element array: `[]` + push would reserve 17 slots.
    else this.index.replace(new RevisionList(record.key, [entry, record]));
    this.events.push(record);
  }

  /** Makes `revision` the current revision (after its changes were recorded). */
  commit(revision: number): void {
    assert(revision === this.currentRevision + 1, "revisions advance one at a time");
    this.currentRevision = revision;
  }

  /** The live revision just before `record` (a watch event's prev_kv), if still kept. */
  previousOf(record: KeyRevision): KeyRevision | undefined {
    // etcd gives a creation (a put with create === mod) no prev_kv, even when a txn deleted the key (range_end
    // "\0") and created it again in one revision, so that the key was live at the revision before.
    if (record.value !== null && record.create === record.mod) return undefined;
    const entry = this.index.get(record.key);
    if (entry === undefined) return undefined;
    if (!(entry instanceof RevisionList)) {
      return entry.mod < record.mod && entry.value !== null ? entry : undefined;
    }
    const position = upperBound(entry.revisions, record.mod - 1) - 1;
    const previous = entry.revisions[position];
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
    this.index.rewriteAll((entry) => {
      if (!(entry instanceof RevisionList)) {
        // A tombstone exactly at `revision` stays: the event log keeps revision `revision` for watchers starting
        // there, and every logged event must have its record in the index (snapshots rely on it).
        return entry.value === null && entry.mod < revision ? undefined : entry;
      }
      const revisions = entry.revisions;
      const keepFrom = upperBound(revisions, revision) - 1;
      if (keepFrom < 0) return entry;
      const atCompaction = revisions[keepFrom]!;
      let dropCount = atCompaction.value === null && atCompaction.mod < revision ? keepFrom + 1 : keepFrom;
      // The event log keeps every change of revision `revision`: keep all of this key's entries of it too.
      while (dropCount > 0 && revisions[dropCount - 1]!.mod === revision) dropCount--;
      if (dropCount === 0) return entry;
      return entryFor(entry.key, revisions.slice(dropCount));
    });
    let firstKept = 0;
    while (firstKept < this.events.length && this.events[firstKept]!.mod < revision) firstKept++;
    this.events = this.events.slice(firstKept);
  }

  /**
   * Every key's kept revisions in key order, in the index's compact form (see KeptRevisions), and the event log: what
   * a snapshot encodes. Not a copy: valid until the next write.
   */
  dump(): { histories: readonly KeptRevisions[]; events: readonly KeyRevision[] } {
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
    this.compactedAtZero = false;
    const entries: IndexEntry[] = [];
    for (const history of state.histories) {
      const entry = entryFor(history.key, history.revisions);
      if (entry !== undefined) entries.push(entry);
    }
    this.index.rebuild(entries);
    this.events = state.events;
  }

  get eventCount(): number {
    return this.events.length;
  }
}

/** The latest live revision of a key (its index entry) with mod <= atRevision. */
function visibleAt(entry: IndexEntry, atRevision: number): KeyRevision | undefined {
  if (!(entry instanceof RevisionList)) {
    return entry.mod <= atRevision && entry.value !== null ? entry : undefined;
  }
  const revisions = entry.revisions;
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
