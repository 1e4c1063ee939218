// One watch stream's state and its bounded delivery queue. The hub pushes; the consumer pulls with
// `next()` / `for await`. Pushing never blocks: past the limit the watcher is cancelled with a reason.
import assert from "node:assert";
import { VigieError } from "../../errors.js";
import type { KeyRevision } from "./key-space.js";
import type { WatchEvent, WatchResponse } from "./watch-types.js";

export interface WatcherOptions {
  readonly id: number;
  /** Binary (latin1) key. */
  readonly key: string;
  /** undefined = single key; null = every key >= key; else the exclusive end. */
  readonly end: string | null | undefined;
  readonly prevKv: boolean;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly progressNotify: boolean;
  readonly maxPendingEvents: number;
}

export interface WatcherHooks {
  /** Asks the hub to queue the next history batch (unsynced watchers). */
  fill(watcher: Watcher): void;
  /** Removes the watcher from the hub (after cancel). */
  detach(watcher: Watcher): void;
}

/** Too many watchers in one hub. */
export class WatchLimitError extends VigieError {
  constructor(maxWatchers: number) {
    super("VIGIE_ERR_TOO_MANY_WATCHERS", `too many watchers: the limit is ${maxWatchers}`);
  }
}

export const SLOW_WATCHER_REASON = "watcher too slow";

export class Watcher implements AsyncIterable<WatchResponse> {
  readonly id: number;
  /** The next revision this watcher has not yet seen (replay cursor while unsynced). */
  nextRevision = 0;
  private readonly queue: WatchResponse[] = [];
  private queueHead = 0;
  private pendingEvents = 0;
  private waiter: ((response: WatchResponse | null) => void) | undefined;
  private activity = false;
  private isClosed = false;
  /** Set once cancelled: why (empty for a cancel the client asked for). */
  cancelReason = "";

  constructor(
    readonly options: WatcherOptions,
    private readonly hooks: WatcherHooks,
  ) {
    this.id = options.id;
  }

  /** True once cancelled; queued responses (ending with the cancel message) can still be read. */
  get closed(): boolean {
    return this.isClosed;
  }

  get queuedResponses(): number {
    return this.queue.length - this.queueHead;
  }

  get queuedEvents(): number {
    return this.pendingEvents;
  }

  /** Is `change` inside this watcher's key or range? (Filters are applied separately.) */
  accepts(change: KeyRevision): boolean {
    const { key, end } = this.options;
    if (end === undefined) return change.key === key;
    return change.key >= key && (end === null || change.key < end);
  }

  filter(events: WatchEvent[]): WatchEvent[] {
    if (!this.options.noPut && !this.options.noDelete) return events;
    return events.filter((e) => (e.type === "PUT" ? !this.options.noPut : !this.options.noDelete));
  }

  /** Queues a response (hub only). Cancels the watcher when its consumer is too far behind. */
  push(response: WatchResponse, eventCount: number): void {
    if (this.isClosed) return;
    if (eventCount > 0) this.activity = true;
    const tooManyEvents = this.pendingEvents + eventCount > this.options.maxPendingEvents;
    // Event-less responses (progress) count too, so a reader that never reads cannot grow the queue forever.
    const tooManyResponses = this.queuedResponses >= this.options.maxPendingEvents;
    if ((tooManyEvents || tooManyResponses) && this.queuedResponses > 0) {
      const reason =
        `${SLOW_WATCHER_REASON}: more than ${this.options.maxPendingEvents} events waiting for delivery; ` +
        `resume from revision ${this.firstUndeliveredRevision(response)}`;
      // Drop the backlog so the consumer learns about the cancel immediately and memory is freed.
      this.queue.length = 0;
      this.queueHead = 0;
      this.pendingEvents = 0;
      this.close(reason, { ...response, events: [], canceled: true, cancel_reason: reason });
      return;
    }
    this.pendingEvents += eventCount;
    this.enqueue(response);
  }

  /** Cancels because history at the watcher's position was compacted (etcd: canceled + compact_revision). */
  cancelCompacted(response: WatchResponse, compactRevision: number): void {
    const reason = "etcdserver: mvcc: required revision has been compacted";
    this.close(reason, { ...response, canceled: true, compact_revision: compactRevision, cancel_reason: reason });
  }

  /** Cancels the watch; the consumer receives a final `canceled` response, then `null`. */
  cancel(reason = ""): void {
    if (this.isClosed) return;
    this.close(reason, {
      header: { revision: 0 },
      watch_id: this.id,
      created: false,
      canceled: true,
      compact_revision: 0,
      cancel_reason: reason,
      events: [],
    });
  }

  /** The next queued response without waiting, or undefined. */
  tryNext(): WatchResponse | undefined {
    if (this.queuedResponses === 0 && !this.isClosed) this.hooks.fill(this);
    if (this.queuedResponses === 0) return undefined;
    const response = this.queue[this.queueHead]!;
    this.queue[this.queueHead] = undefined as unknown as WatchResponse;
    this.queueHead++;
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    this.pendingEvents -= response.events.length;
    return response;
  }

  /** The next response; resolves null once the watcher is closed and drained. One reader at a time. */
  next(): Promise<WatchResponse | null> {
    assert(this.waiter === undefined, "only one pending next() per watcher");
    const ready = this.tryNext();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.isClosed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchResponse> {
    try {
      for (;;) {
        const response = await this.next();
        if (response === null) return;
        yield response;
      }
    } finally {
      this.cancel();
    }
  }

  /** Hub: history became available (restore); a reader waiting on an empty queue gets it now. */
  wake(): void {
    if (this.waiter !== undefined && this.queuedResponses === 0 && !this.isClosed) this.hooks.fill(this);
  }

  /** Whether events were delivered since the last call (progress notifications skip busy watchers). */
  takeActivity(): boolean {
    const had = this.activity;
    this.activity = false;
    return had;
  }

  private enqueue(response: WatchResponse): void {
    const waiter = this.waiter;
    if (waiter !== undefined && this.queuedResponses === 0) {
      this.waiter = undefined;
      this.pendingEvents -= response.events.length;
      waiter(response);
      return;
    }
    this.queue.push(response);
  }

  private close(reason: string, finalResponse: WatchResponse): void {
    if (this.isClosed) return;
    this.enqueue(finalResponse);
    this.isClosed = true;
    this.cancelReason = reason;
    this.hooks.detach(this);
    // A reader waiting on an empty queue got the final response above; nothing else to wake.
  }

  private firstUndeliveredRevision(response: WatchResponse): number {
    const head = this.queue[this.queueHead];
    return head?.events[0]?.kv.mod_revision ?? response.events[0]?.kv.mod_revision ?? this.nextRevision;
  }
}
