// Keeps the StoreMirror current: loads new dependencies at the mirror's revision, runs one watch stream over the
// smallest key range covering every dependency (one stream means one total order of events, hence renders
// consistent at one revision), reconnects with backoff resuming after the last applied revision, and resyncs fully
// after a compaction, reporting only the keys whose values actually changed.
import { StoreUnavailableError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Counter, Gauge, MetricsRegistry } from "../metrics.js";
import { rangePages } from "../store/client/range-pages.js";
import {
  EtcdError,
  prefixEnd,
  type StoreClient,
  WatchMessageTooLargeError,
  type WatchResponse,
  type WatchStream,
} from "../store/client.js";
import { type Stored, StoreMirror, storedFrom } from "./mirror.js";

const RECONNECT_BACKOFF_MIN_MS = 50;
const RECONNECT_BACKOFF_MAX_MS = 2_000;
/** A watch stream that stayed open this long (or delivered something after "created") worked: backoff resets. */
const STREAM_WORKED_AFTER_MS = 1_000;
/** Parallel range requests while loading many dependencies at once. */
const LOAD_CONCURRENCY = 16;
/** A watch stream quiet for this long is checked with a cheap read (see `probe`). */
const STREAM_PROBE_INTERVAL_MS = 5_000;
/** Watch responses held while a load is in progress; beyond this the stream restarts from the mirror revision. */
const QUEUED_RESPONSES_MAX = 10_000;

export interface SyncStatus {
  healthy: boolean;
  reason?: string;
}

/** Called with the keys whose visible value changed, after the mirror applied them. */
export type ChangeListener = (changedKeys: ReadonlySet<string>, revision: number) => void;

function keyRange(key: string): [Buffer, Buffer] {
  return [Buffer.from(key), Buffer.concat([Buffer.from(key), Buffer.from([0])])];
}

function prefixRange(prefix: string): [Buffer, Buffer] {
  return [Buffer.from(prefix), prefixEnd(prefix)];
}

/** `end` "\0" means "to the end of the keyspace", which sorts after every other end. */
function endAfter(a: Buffer, b: Buffer): boolean {
  const aInfinite = a.length === 1 && a[0] === 0;
  const bInfinite = b.length === 1 && b[0] === 0;
  if (aInfinite || bInfinite) return aInfinite && !bInfinite;
  return Buffer.compare(a, b) > 0;
}

export class StoreSync {
  readonly mirror = new StoreMirror();
  private stream: WatchStream | undefined;
  private streamRange: string | undefined;
  /** Bumped on every stream restart so that a superseded stream loop exits. */
  private generation = 0;
  private loadChain: Promise<void> = Promise.resolve();
  private loading = false;
  private queued: WatchResponse[] = [];
  private stopped = false;
  private health: SyncStatus = { healthy: true };
  private backoffMs = RECONNECT_BACKOFF_MIN_MS;
  private probeTimer: NodeJS.Timeout | undefined;
  /** The pending retry of a failed resync, cleared by stop(). */
  private resyncRetryTimer: NodeJS.Timeout | undefined;
  /** The pause before a stream reconnect; stop() ends it at once so that stop() leaves no timer behind. */
  private reconnectPause: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private probing = false;
  private lastMessageAtMs = 0;
  private readonly reconnects: Counter;
  private readonly resyncs: Counter;
  private readonly eventsApplied: Counter;
  private readonly revisionGauge: Gauge;

  constructor(
    private readonly client: StoreClient,
    private readonly logger: Logger,
    metrics: MetricsRegistry,
    private readonly onChange: ChangeListener,
    private readonly probeIntervalMs = STREAM_PROBE_INTERVAL_MS,
  ) {
    this.reconnects = metrics.counter("vigie_watch_reconnects_total", "Watch stream reconnections");
    this.resyncs = metrics.counter("vigie_watch_resyncs_total", "Full reloads after a compaction");
    this.eventsApplied = metrics.counter("vigie_watch_events_total", "Watch events applied to the mirror");
    this.revisionGauge = metrics.gauge("vigie_watch_revision", "Store revision the mirror is consistent at");
    this.revisionGauge.collect(() => this.mirror.revision);
  }

  status(): SyncStatus {
    return this.health;
  }

  /** Loads the given keys and prefixes not loaded yet (serialized with other loads), then covers them by the watch. */
  async load(keys: Iterable<string>, prefixes: Iterable<string>): Promise<void> {
    const wantedKeys = [...keys];
    const wantedPrefixes = [...prefixes];
    const run = this.loadChain.then(async () => await this.loadNow(wantedKeys, wantedPrefixes));
    this.loadChain = run.catch(() => undefined);
    await run;
  }

  stop(): void {
    this.stopped = true;
    if (this.probeTimer !== undefined) clearInterval(this.probeTimer);
    if (this.resyncRetryTimer !== undefined) clearTimeout(this.resyncRetryTimer);
    this.resyncRetryTimer = undefined;
    if (this.reconnectPause !== undefined) {
      clearTimeout(this.reconnectPause.timer);
      this.reconnectPause.resolve();
      this.reconnectPause = undefined;
    }
    this.generation += 1;
    this.stream?.cancel();
  }

  private async loadNow(keys: string[], prefixes: string[]): Promise<void> {
    const newKeys = keys.filter((key) => !this.mirror.hasKey(key));
    const newPrefixes = prefixes.filter((prefix) => !this.mirror.hasPrefix(prefix));
    if (newKeys.length === 0 && newPrefixes.length === 0) return;
    this.loading = true;
    try {
      // Loaded into a scratch mirror and taken over only when complete: a load that fails half-way must not leave
      // some keys at a revision the rest of the mirror is not at.
      const scratch = new StoreMirror();
      try {
        const revision = this.mirror.revision === 0 ? undefined : this.mirror.revision;
        await this.fetchInto(scratch, newKeys, newPrefixes, revision);
        this.mirror.absorb(scratch);
        if (this.mirror.revision === 0) this.mirror.revision = scratch.revision;
      } catch (error) {
        if (!(error instanceof EtcdError && error.compacted)) throw error;
        await this.resync("compacted while loading new dependencies", { keys: newKeys, prefixes: newPrefixes });
      }
      this.setHealthy();
    } catch (error) {
      this.setUnhealthy(error);
      // Nothing was added: the events held during the load apply as they are, in order.
      this.loading = false;
      this.drainQueue();
      throw error;
    } finally {
      this.loading = false;
    }
    // With a new covering range the stream restarts from the load revision (held events are dropped and replayed);
    // otherwise the held events apply now.
    this.ensureStream();
  }

  /**
   * Fetches keys and prefixes into `mirror` at `revision` (or at the present when undefined, which then becomes
   * the mirror's revision). The first request fixes the revision; the rest read at it.
   */
  private async fetchInto(
    mirror: StoreMirror,
    keys: string[],
    prefixes: string[],
    revision: number | undefined,
  ): Promise<void> {
    const jobs: Array<() => Promise<void>> = [
      ...keys.map((key) => async () => {
        const result = await this.client.range(key, atRevision(revision));
        revision ??= result.header.revision;
        const kv = result.kvs[0];
        mirror.loadKey(key, kv && storedFrom(kv.value, kv.modRevision));
      }),
      ...prefixes.map((prefix) => async () => {
        // In pages, all at one revision (the first page's when none is given): see rangePages.
        const found: Array<[string, Stored]> = [];
        // An empty prefix means every key: etcd spells its start "\0".
        const from = prefix === "" ? Buffer.from([0]) : Buffer.from(prefix);
        for await (const page of rangePages(this.client, from, prefixEnd(prefix), { revision, serializable: true })) {
          revision ??= page.header.revision;
          for (const kv of page.kvs) found.push([kv.key.toString("utf8"), storedFrom(kv.value, kv.modRevision)]);
        }
        mirror.loadPrefix(prefix, found);
      }),
    ];
    const first = jobs.shift();
    if (first === undefined) return;
    await first();
    while (jobs.length > 0) await Promise.all(jobs.splice(0, LOAD_CONCURRENCY).map(async (job) => await job()));
    if (mirror.revision === 0 && revision !== undefined) mirror.revision = revision;
  }

  /** Reloads every dependency at the present revision and reports only the keys whose values differ. */
  private async resync(
    why: string,
    extra: { keys: string[]; prefixes: string[] } = { keys: [], prefixes: [] },
  ): Promise<void> {
    this.resyncs.inc();
    this.logger.warn({ why, revision: this.mirror.revision }, "resyncing the mirror from the store");
    const deps = this.mirror.dependencies();
    const fresh = new StoreMirror();
    await this.fetchInto(fresh, [...deps.keys, ...extra.keys], [...deps.prefixes, ...extra.prefixes], undefined);
    const before = this.mirror.snapshotValues();
    const after = fresh.snapshotValues();
    const changed = new Set<string>();
    for (const [key, value] of after) {
      // A binary value and text with the same replacement characters differ: one fails the render, one does not.
      const old = before.get(key);
      if (old?.value !== value.value || old.notText !== value.notText) changed.add(key);
    }
    for (const key of before.keys()) if (!after.has(key)) changed.add(key);
    this.mirror.clear();
    this.mirror.absorb(fresh);
    this.mirror.revision = fresh.revision;
    // The stream must restart after the new revision: forget the current one so ensureStream() replaces it.
    this.streamRange = undefined;
    if (changed.size > 0) this.onChange(changed, this.mirror.revision);
  }

  /** The single key range covering every loaded dependency, as [start, end). */
  private coveringRange(): [Buffer, Buffer] | undefined {
    const { keys, prefixes } = this.mirror.dependencies();
    const ranges = [...keys.map(keyRange), ...prefixes.map(prefixRange)];
    if (ranges.length === 0) return undefined;
    let [start, end] = ranges[0]!;
    for (const [rangeStart, rangeEnd] of ranges) {
      if (Buffer.compare(rangeStart, start) < 0) start = rangeStart;
      if (endAfter(rangeEnd, end)) end = rangeEnd;
    }
    return [start, end];
  }

  private ensureStream(): void {
    const range = this.coveringRange();
    if (range === undefined) return;
    const id = `${range[0].toString("base64")}:${range[1].toString("base64")}`;
    if (id === this.streamRange && this.stream !== undefined) {
      this.drainQueue();
      return;
    }
    this.streamRange = id;
    this.restartStream();
  }

  private restartStream(): void {
    if (this.stopped) return;
    this.generation += 1;
    this.stream?.cancel();
    this.stream = undefined;
    this.queued = [];
    void this.runStream(this.generation);
  }

  private async runStream(generation: number): Promise<void> {
    while (!this.stopped && generation === this.generation) {
      const range = this.coveringRange();
      if (range === undefined) return;
      const stream = this.client.watch(range[0], {
        rangeEnd: range[1],
        startRevision: this.mirror.revision + 1,
        progressNotify: true,
      });
      this.stream = stream;
      this.startProbe();
      let createdAtMs: number | undefined;
      let delivered = false;
      try {
        for await (const response of stream) {
          this.lastMessageAtMs = performance.now();
          if (generation !== this.generation) return;
          if (response.created) {
            if (response.header.revision > 0 && response.header.revision < this.mirror.revision) {
              stream.cancel();
              // Whatever the reason, the next attempt (and the read below) starts at another member: a member stuck
              // behind (one removed from the cluster stops applying) would otherwise be retried forever, being the
              // last endpoint that answered.
              stream.avoidEndpoint();
              const storeRevision = await this.linearizableRevision();
              if (storeRevision < this.mirror.revision) {
                // The whole store is behind what we saw: it was replaced (a new cluster, a restored backup). The
                // watch would wait for a revision that means nothing now; reload everything instead.
                await this.resyncSerialized(
                  `the store is at revision ${storeRevision}, behind the ${this.mirror.revision} seen`,
                );
                return;
              }
              // Only the member answering the watch lags (it was partitioned or restarted): a resync read from it
              // would roll files back. Reconnect with backoff, as for an outage, until a member is caught up.
              throw new StoreUnavailableError(
                `the member answering the watch is at revision ${response.header.revision}, behind the ` +
                  `${this.mirror.revision} seen (the store is at ${storeRevision}); reconnecting`,
              );
            }
            this.setHealthy();
            createdAtMs = performance.now();
            continue;
          }
          if (response.canceled) {
            if (response.compactRevision > 0) {
              stream.cancel();
              await this.resyncSerialized(`revision ${this.mirror.revision + 1} compacted`);
              return;
            }
            throw new StoreUnavailableError(
              `watch canceled by the store: ${response.cancelReason || "no reason given"}`,
            );
          }
          delivered = true;
          if (this.loading) {
            if (this.queued.length >= QUEUED_RESPONSES_MAX)
              throw new StoreUnavailableError("too many queued watch events");
            this.queued.push(response);
          } else {
            this.applyResponse(response);
          }
        }
      } catch (error) {
        if (generation !== this.generation || this.stopped) return;
        if (error instanceof WatchMessageTooLargeError) {
          // Resuming from the same revision would fetch the same oversized message, forever: skip that history and
          // read the present instead, as after a compaction (the changed keys are reported all the same).
          await this.resyncSerialized(`a watch message after revision ${this.mirror.revision} is too large`);
          return;
        }
        this.setUnhealthy(error);
      }
      if (generation !== this.generation || this.stopped) return;
      // The backoff resets after a stream that worked, not on "created" alone: a member (or a proxy) that accepts
      // each watch and drops it at once would otherwise be retried at the minimum pause forever, by every sidecar.
      const worked =
        createdAtMs !== undefined && (delivered || performance.now() - createdAtMs >= STREAM_WORKED_AFTER_MS);
      if (worked) this.backoffMs = RECONNECT_BACKOFF_MIN_MS;
      this.reconnects.inc();
      const delayMs = this.backoffMs * (0.5 + Math.random() / 2);
      this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_BACKOFF_MAX_MS);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.reconnectPause = undefined;
          resolve();
        }, delayMs);
        this.reconnectPause = { timer, resolve };
      });
    }
  }

  /** The store's revision by a linearizable read: a quorum's, not what one possibly lagging member holds. */
  private async linearizableRevision(): Promise<number> {
    const result = await this.client.range("\0", { countOnly: true, limit: 1 });
    return result.header.revision;
  }

  /**
   * A quiet watch stream looks the same whether nothing changes or the store vanished without closing the
   * connection (a partition, a frozen process). When the stream has been quiet for a while, a cheap read from the
   * member serving it tells which: if that member does not answer, the stream is restarted (resuming from the mirror revision) and /health
   * says why.
   */
  private startProbe(): void {
    if (this.probeTimer !== undefined) return;
    this.probeTimer = setInterval(() => void this.probe(), this.probeIntervalMs);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    if (this.stopped || this.probing || this.stream === undefined) return;
    if (performance.now() - this.lastMessageAtMs < this.probeIntervalMs) return;
    this.probing = true;
    try {
      // Asked of the member serving the stream, not of the store: with several endpoints a read would fail over to
      // another member and succeed while the stream's own member is frozen, and the stream would never restart.
      await this.stream.probe();
      this.lastMessageAtMs = performance.now();
    } catch (error) {
      if (this.stopped) return;
      this.setUnhealthy(error);
      this.restartStream();
    } finally {
      this.probing = false;
    }
  }

  private async resyncSerialized(why: string): Promise<void> {
    const run = this.loadChain.then(async () => {
      if (this.stopped) return;
      this.loading = true;
      try {
        await this.resync(why);
        this.setHealthy();
        this.loading = false;
        this.ensureStream();
      } catch (error) {
        if (this.stopped) return;
        this.setUnhealthy(error);
        // Try again from the same point after a pause: the stream loop of a new generation does the waiting.
        if (this.resyncRetryTimer !== undefined) clearTimeout(this.resyncRetryTimer);
        this.resyncRetryTimer = setTimeout(() => {
          this.resyncRetryTimer = undefined;
          void this.resyncSerialized(why);
        }, this.backoffMs);
        this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_BACKOFF_MAX_MS);
      } finally {
        this.loading = false;
      }
    });
    this.loadChain = run.catch(() => undefined);
    await run;
  }

  private drainQueue(): void {
    const queued = this.queued;
    this.queued = [];
    for (const response of queued) this.applyResponse(response);
  }

  private applyResponse(response: WatchResponse): void {
    if (response.events.length === 0) {
      // A progress notification: every event up to header.revision has been delivered.
      if (response.header.revision > this.mirror.revision) this.mirror.revision = response.header.revision;
      return;
    }
    const changed = new Set<string>();
    let revision = this.mirror.revision;
    for (const event of response.events) {
      const modRevision = event.kv.modRevision;
      if (modRevision <= this.mirror.revision) continue;
      const key = event.kv.key.toString("utf8");
      const stored = event.type === "PUT" ? storedFrom(event.kv.value, modRevision) : undefined;
      if (this.mirror.apply(key, stored?.value, modRevision, stored?.notText === true)) changed.add(key);
      if (modRevision > revision) revision = modRevision;
    }
    this.eventsApplied.inc(response.events.length);
    // Advance only after the whole response: a transaction's events share one revision.
    this.mirror.revision = revision;
    if (changed.size > 0) this.onChange(changed, revision);
  }

  private setHealthy(): void {
    if (!this.health.healthy) this.logger.info({ revision: this.mirror.revision }, "store reachable again");
    this.health = { healthy: true };
  }

  private setUnhealthy(error: unknown): void {
    const reason = `store unreachable: ${(error as Error).message}`;
    if (this.health.healthy) this.logger.warn({ reason }, "store unreachable; files stay as they are");
    this.health = { healthy: false, reason };
  }
}

/**
 * Reads are serializable: answered by the member behind the endpoint (the local replica for an agent) without a
 * quorum round, so rendering keeps working on a learner and through a leader loss. Consistency does not suffer:
 * every read after the first is pinned to one revision, and the watch then delivers everything after it.
 */
function atRevision(revision: number | undefined): { revision?: number; serializable: true } {
  return revision === undefined ? { serializable: true } : { revision, serializable: true };
}
