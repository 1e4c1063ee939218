// The watch hub: routes each committed revision's changes to the watchers whose key or range they touch.
// Synced watchers get live events pushed into a bounded queue; a watcher that starts in the past is "unsynced"
// and pulls history from the event log as its consumer reads (so a replay from revision 1 costs no memory up
// front). A consumer that falls more than `maxPendingEvents` behind is cancelled with a reason: the store never
// waits for one slow client.
import assert from "node:assert";
import type { ResponseHeader } from "./commands.js";
import type { KeyRevision, KeySpace } from "./key-space.js";
import { keyValueOf, tombstoneKeyValue } from "./kv-convert.js";
import { toBinaryKey, toBinaryRangeEnd } from "./ranges.js";
import type { WatchCreateRequest, WatchEvent, WatchLimits, WatchResponse } from "./watch-types.js";
import { DEFAULT_WATCH_LIMITS } from "./watch-types.js";
import { Watcher, WatchLimitError } from "./watcher.js";

const NO_EVENTS: WatchEvent[] = [];

export class WatchHub {
  private readonly limits: WatchLimits;
  private readonly watchers = new Map<number, Watcher>();
  /** Synced single-key watchers by key: the common case (templates watch keys) is one Map lookup per event. */
  private readonly keyWatchers = new Map<string, Set<Watcher>>();
  /** Synced range/prefix watchers: checked linearly per event. */
  private readonly rangeWatchers = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  private nextWatchId = 1;

  constructor(
    private readonly space: KeySpace,
    limits: Partial<WatchLimits> = {},
  ) {
    this.limits = { ...DEFAULT_WATCH_LIMITS, ...limits };
  }

  get size(): number {
    return this.watchers.size;
  }

  /** Creates a watcher; its first response has `created: true`. */
  watch(request: WatchCreateRequest): Watcher {
    if (this.watchers.size >= this.limits.maxWatchers) throw new WatchLimitError(this.limits.maxWatchers);
    let id = request.watch_id ?? 0;
    if (id <= 0) {
      while (this.watchers.has(this.nextWatchId)) this.nextWatchId++;
      id = this.nextWatchId++;
    }
    assert(!this.watchers.has(id), `watch id ${id} already in use`);
    const key = toBinaryKey(request.key);
    const end = toBinaryRangeEnd(request.key, request.range_end);
    const filters = request.filters ?? [];
    const current = this.space.currentRevision;
    const requested = request.start_revision ?? 0;
    // etcd: 0 means "from the next change"; a negative start below etcd's compact revision (-1 before the first
    // compaction) is cancelled as compacted (by fill); -1 on a store never compacted starts from the next change.
    const compactedNegative = requested < 0 && requested < this.etcdCompactRevision();
    const start = requested > 0 || compactedNegative ? requested : current + 1;
    const watcher = new Watcher(
      {
        id,
        key,
        end,
        prevKv: request.prev_kv ?? false,
        noPut: filters.includes("NOPUT"),
        noDelete: filters.includes("NODELETE"),
        progressNotify: request.progress_notify ?? false,
        maxPendingEvents: this.limits.maxPendingEvents,
      },
      {
        fill: (w) => this.fill(w),
        detach: (w) => this.detach(w),
      },
    );
    watcher.nextRevision = start;
    this.watchers.set(id, watcher);
    watcher.push({ ...this.response(watcher, NO_EVENTS), created: true }, 0);
    if (start <= current) this.unsynced.add(watcher);
    else this.addSynced(watcher);
    return watcher;
  }

  get(id: number): Watcher | undefined {
    return this.watchers.get(id);
  }

  /**
   * Delivers the changes of revision `revision` (all of them, in order) to synced watchers. Called by the store
   * right after the revision is committed.
   */
  dispatch(revision: number, changes: readonly KeyRevision[]): void {
    if (changes.length === 0 || this.watchers.size === 0) return;
    // Build each event once and share it between watchers (prev_kv variants built lazily).
    const plain: (WatchEvent | undefined)[] = new Array(changes.length);
    const withPrev: (WatchEvent | undefined)[] = new Array(changes.length);
    const eventAt = (i: number, prevKv: boolean): WatchEvent => {
      const cache = prevKv ? withPrev : plain;
      let event = cache[i];
      if (event === undefined) {
        event = this.eventOf(changes[i]!, prevKv);
        cache[i] = event;
      }
      return event;
    };
    if (changes.length === 1 && this.rangeWatchers.size === 0) {
      // Fast path: one change, only key watchers.
      const targets = this.keyWatchers.get(changes[0]!.key);
      if (targets === undefined) return;
      // Watchers of one key share the event list and the header: one allocation (the response) per watcher.
      // Responses are read-only for consumers.
      const header = { revision: this.space.currentRevision };
      let plainList: WatchEvent[] | undefined;
      let prevList: WatchEvent[] | undefined;
      for (const watcher of targets) {
        const prevKv = watcher.options.prevKv;
        if (prevKv && prevList === undefined) prevList = [eventAt(0, true)];
        if (!prevKv && plainList === undefined) plainList = [eventAt(0, false)];
        const list = prevKv ? prevList! : plainList!;
        this.deliver(watcher, revision, list, header);
      }
      return;
    }
    const perWatcher = new Map<Watcher, WatchEvent[]>();
    const collect = (watcher: Watcher, i: number): void => {
      if (!watcher.accepts(changes[i]!)) return;
      let list = perWatcher.get(watcher);
      if (list === undefined) {
        list = [];
        perWatcher.set(watcher, list);
      }
      list.push(eventAt(i, watcher.options.prevKv));
    };
    for (let i = 0; i < changes.length; i++) {
      const change = changes[i]!;
      const targets = this.keyWatchers.get(change.key);
      if (targets !== undefined) for (const watcher of targets) collect(watcher, i);
      for (const watcher of this.rangeWatchers) collect(watcher, i);
    }
    for (const [watcher, events] of perWatcher) this.deliver(watcher, revision, events);
  }

  /** Sends an empty progress response to synced watchers that asked for progress and got nothing since last time. */
  progressTick(): void {
    for (const watcher of this.watchers.values()) {
      if (!watcher.options.progressNotify || this.unsynced.has(watcher)) continue;
      if (watcher.takeActivity()) continue;
      watcher.push(this.response(watcher, NO_EVENTS), 0);
    }
  }

  /** etcd's progress request: an empty response with the current revision, if the watcher is synced. */
  requestProgress(id: number): void {
    const watcher = this.watchers.get(id);
    if (watcher !== undefined && !this.unsynced.has(watcher)) watcher.push(this.response(watcher, NO_EVENTS), 0);
  }

  /** After a restore: every watcher catches up from the (new) event log, or is cancelled if that was compacted. */
  resyncAll(previousRevision: number): void {
    for (const watcher of this.watchers.values()) {
      if (this.unsynced.has(watcher)) continue;
      this.removeSynced(watcher);
      watcher.nextRevision = Math.max(watcher.nextRevision, previousRevision + 1);
      this.unsynced.add(watcher);
    }
    for (const watcher of [...this.unsynced]) watcher.wake();
  }

  /** Cancels every watcher (store closing). */
  cancelAll(reason: string): void {
    for (const watcher of [...this.watchers.values()]) watcher.cancel(reason);
  }

  private deliver(watcher: Watcher, revision: number, events: WatchEvent[], header?: ResponseHeader): void {
    // A watcher created with a future start revision waits for it (etcd does the same).
    if (revision < watcher.nextRevision) return;
    watcher.nextRevision = revision + 1;
    const kept = watcher.filter(events);
    if (kept.length === 0) return;
    watcher.push(this.response(watcher, kept, header), kept.length);
  }

  /**
   * Pulls the next batch of history for an unsynced watcher (called when its consumer wants more). Like etcd, a
   * batch holds the watcher's events of at most `replayBatchRevisions` revisions (counted before the NOPUT/NODELETE
   * filters, as etcd does); the scan goes on through revisions with no event for the watcher. The log is read
   * `replayBatchEvents` at a time.
   */
  private fill(watcher: Watcher): void {
    while (this.unsynced.has(watcher) && !watcher.closed && watcher.queuedResponses === 0) {
      const compactRevision = this.etcdCompactRevision();
      if (watcher.nextRevision < compactRevision) {
        watcher.cancelCompacted(this.response(watcher, NO_EVENTS), compactRevision);
        return;
      }
      const events: WatchEvent[] = [];
      let revisions = 0;
      let lastRevision = 0;
      let next = watcher.nextRevision;
      for (let full = false; !full; ) {
        const batch = this.space.eventsFrom(next, this.limits.replayBatchEvents);
        const last = batch[batch.length - 1];
        if (last === undefined) {
          next = this.space.currentRevision + 1;
          break;
        }
        for (const change of batch) {
          if (!watcher.accepts(change)) continue;
          if (change.mod !== lastRevision) {
            if (revisions === this.limits.replayBatchRevisions) {
              // The batch is full: the next one starts with this revision.
              full = true;
              next = change.mod;
              break;
            }
            revisions++;
            lastRevision = change.mod;
          }
          events.push(this.eventOf(change, watcher.options.prevKv));
        }
        if (!full) next = last.mod + 1;
      }
      watcher.nextRevision = next;
      if (next > this.space.currentRevision) {
        this.unsynced.delete(watcher);
        this.addSynced(watcher);
      }
      const kept = watcher.filter(events);
      if (kept.length > 0) watcher.push(this.response(watcher, kept), kept.length);
    }
  }

  /**
   * etcd's compact revision as its watchers compare with it: -1 until the first compaction. Only a negative start
   * revision can be below -1 (etcd then cancels it with compact_revision -1). Unlike KeySpace.etcdCompactRevision,
   * a compaction at revision 0 is not counted: after one, etcd answers such a watch with an empty response and
   * does not cancel it, which vigie does not copy; the watch is cancelled with -1 as before it.
   */
  private etcdCompactRevision(): number {
    return this.space.compactRevision > 0 ? this.space.compactRevision : -1;
  }

  private eventOf(change: KeyRevision, prevKv: boolean): WatchEvent {
    const event: WatchEvent =
      change.value === null
        ? { type: "DELETE", kv: tombstoneKeyValue(change) }
        : { type: "PUT", kv: keyValueOf(change, false) };
    if (prevKv) {
      const previous = this.space.previousOf(change);
      if (previous !== undefined) event.prev_kv = keyValueOf(previous, false);
    }
    return event;
  }

  /** A plain response (no spread: this runs once per watcher per revision on the hot path). */
  private response(watcher: Watcher, events: WatchEvent[], header?: ResponseHeader): WatchResponse {
    return {
      header: header ?? { revision: this.space.currentRevision },
      watch_id: watcher.id,
      created: false,
      canceled: false,
      compact_revision: 0,
      cancel_reason: "",
      events: events === NO_EVENTS ? [] : events,
    };
  }

  private addSynced(watcher: Watcher): void {
    const { key, end } = watcher.options;
    if (end === undefined) {
      let set = this.keyWatchers.get(key);
      if (set === undefined) {
        set = new Set();
        this.keyWatchers.set(key, set);
      }
      set.add(watcher);
    } else {
      this.rangeWatchers.add(watcher);
    }
  }

  private removeSynced(watcher: Watcher): void {
    const set = this.keyWatchers.get(watcher.options.key);
    if (set?.delete(watcher) && set.size === 0) this.keyWatchers.delete(watcher.options.key);
    this.rangeWatchers.delete(watcher);
  }

  private detach(watcher: Watcher): void {
    this.removeSynced(watcher);
    this.unsynced.delete(watcher);
    this.watchers.delete(watcher.id);
  }
}
