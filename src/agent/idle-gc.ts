// Gives back the memory of a burst of work once the agent is idle again. A bulk load or a write storm leaves its
// garbage, and the heap pages it grew into, resident until V8's next full GC; an agent that goes quiet may not run
// one for a long time (V8's memory reducer looks again only every 8 s and gives up while anything allocates), so the
// leader of a cluster read 8-15 MB above its followers for seconds after a bulk load. This collector watches the
// heap and, once it has grown by a burst's worth since the last collection and the agent has been idle for a short
// while (no Raft entry applied, no request received, the event loop nearly idle), runs two full GCs: the first
// frees the garbage, the second compacts what survived and releases the pages the first emptied (one alone keeps
// them committed). Then it has malloc give back the free pages in the middle of its heaps too (release-memory.ts):
// the burst's request bodies, frames and socket buffers, freed but kept resident by glibc beneath the allocations
// that outlived them (~3.5 MB on a leader after loading 10,000 keys); and it takes node's dynamic-linking tables
// out of its resident set (~6 MB of node's binary, nearly all read only at start-up; what a later lookup reads
// faults back, and the next collection drops it again).
// The agent's start-up counts as a burst: its garbage goes at the first quiet moment.
// It never runs while work continues, and its pauses take at most `maxPauseShare` of the time.
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import type { Logger } from "../log.js";
import { fullGc } from "../v8-settings.js";
import { loadReleaseMemory, type ReleaseMemory } from "./release-memory.js";

/** What the collector looks at on each poll. */
export interface IdleGcSample {
  /** V8's committed heap plus external memory (Buffers), in bytes: what a burst grows and a GC gives back. */
  heapBytes: number;
  /** Fraction of the last poll interval the event loop spent working (0..1). */
  loopUtilization: number;
  /** A counter that moves when the agent does work (applied entries plus requests received); constant when idle. */
  activity: number;
}

export interface IdleGcPolicy {
  /** Growth of `heapBytes` since the last collection that makes a collection worth its pause. */
  burstBytes: number;
  /** How long the agent must have been idle (activity unchanged, loop below `busyUtilization`). */
  quietMs: number;
  /** A poll whose loop utilization reaches this counts as busy. */
  busyUtilization: number;
  /** At least this many ms between two collections, whatever the load pattern. */
  minIntervalMs: number;
  /**
   * And at least the last pause divided by this between two collections: the collections' pauses take at most this
   * share of the agent's time, whatever the heap size (a bigger heap pauses longer and is collected less often).
   */
  maxPauseShare: number;
}

/**
 * 8 MiB: far above what an idle agent allocates, below the growth of a leader loading 10,000 keys (~12 MiB, most of
 * it garbage; a follower grows ~4 MiB, nearly all of it live data, which a collection would not give back). 200 ms
 * without an applied entry and with a nearly idle loop: a writing client is busier than that. A double GC pauses the
 * loop 25-70 ms with a ~25 MB heap and ~120 ms with ~100 MB on this 2-core machine: 5% of the time at most means one
 * collection per 1-2.5 s at the very most, and a new burst of 8 MiB is needed each time.
 */
export const DEFAULT_IDLE_GC_POLICY: IdleGcPolicy = {
  burstBytes: 8 * 1024 * 1024,
  quietMs: 200,
  busyUtilization: 0.1,
  minIntervalMs: 1000,
  maxPauseShare: 0.05,
};

const DEFAULT_POLL_MS = 50;

/** The decision part, free of timers and V8 (unit-tested): feed it samples, it says when to collect. */
export class IdleGcScheduler {
  /** heapBytes right after the last collection (or at start): growth is measured from here. */
  private baselineBytes: number | undefined;
  private lastActivity: number | undefined;
  private quietSinceMs: number | undefined;
  /** When the next collection may run at the earliest (see minIntervalMs, maxPauseShare). */
  private nextAllowedMs = Number.NEGATIVE_INFINITY;
  /** The next collection is the start-up's (see the constructor). */
  private startupPending: boolean;

  /**
   * `startBytes`: the heap size growth is first measured from. By default the first sample's; 0 makes the start-up
   * itself a burst (loading modules, replaying the WAL), collected at the first quiet moment.
   */
  constructor(
    private readonly policy: IdleGcPolicy = DEFAULT_IDLE_GC_POLICY,
    startBytes?: number,
  ) {
    this.baselineBytes = startBytes;
    this.startupPending = startBytes !== undefined;
    assert.ok(
      policy.burstBytes > 0 &&
        policy.quietMs >= 0 &&
        policy.minIntervalMs >= 0 &&
        policy.maxPauseShare > 0 &&
        policy.maxPauseShare <= 1,
      "idle GC policy",
    );
  }

  /** Records a sample taken at `nowMs`; true when the caller should collect now (then call `collected`). */
  observe(sample: IdleGcSample, nowMs: number): boolean {
    this.baselineBytes ??= sample.heapBytes;
    // A shrinking heap (V8 collected on its own) lowers the bar: growth counts from the lowest point seen.
    this.baselineBytes = Math.min(this.baselineBytes, sample.heapBytes);
    const busy = sample.loopUtilization >= this.policy.busyUtilization || sample.activity !== this.lastActivity;
    this.lastActivity = sample.activity;
    if (busy) {
      this.quietSinceMs = undefined;
      return false;
    }
    this.quietSinceMs ??= nowMs;
    return (
      nowMs - this.quietSinceMs >= this.policy.quietMs &&
      nowMs >= this.nextAllowedMs &&
      sample.heapBytes - this.baselineBytes >= this.policy.burstBytes
    );
  }

  /** The caller collected: it ended at `nowMs` after a pause of `pauseMs`, and left the heap at `heapBytesAfter`. */
  collected(nowMs: number, pauseMs: number, heapBytesAfter: number): void {
    // The spacing bounds the pauses of repeated bursts. The start-up's single collection does not delay the first
    // burst's: a bulk load right after start would otherwise stay resident for a second or more after it ended.
    if (!this.startupPending)
      this.nextAllowedMs = nowMs + Math.max(this.policy.minIntervalMs, pauseMs / this.policy.maxPauseShare);
    this.startupPending = false;
    this.baselineBytes = heapBytesAfter;
  }
}

export interface IdleGc {
  stop(): void;
}

export interface IdleGcOptions {
  logger: Logger;
  /** The agent's work counter (see IdleGcSample.activity). */
  activity: () => number;
  policy?: IdleGcPolicy;
  pollMs?: number;
  /** The full GC to run; default: node's `gc`. */
  collect?: () => void;
  /**
   * Gives memory back after each collection; default: the addon's (none when it was not built: the collector only
   * collects).
   */
  release?: ReleaseMemory | undefined;
  /**
   * Whether the agent's start-up counts as a burst (default true): its garbage (module loading, config, a replayed
   * WAL) is then collected at the first quiet moment, instead of staying resident until a later burst.
   */
  startupIsBurst?: boolean;
}

function heapBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapTotal + usage.external;
}

/**
 * Polls every `pollMs` (an unref'd timer: it never keeps the process alive) and collects when the scheduler says
 * so, then trims malloc (the collection has freed the dead Buffers' memory by the time gc() returns) and drops
 * the linker tables. That time is part of the pause the scheduler spaces collections by (0.3 ms idle, ~2 ms after a
 * 10,000-key load, ~15 ms after 100,000 keys).
 */
export function startIdleGc(options: IdleGcOptions): IdleGc {
  const log = options.logger.child({ component: "idle-gc" });
  const collect = options.collect ?? fullGc();
  const release = "release" in options ? options.release : defaultRelease(log);
  let refusalLogged = false;
  const scheduler = new IdleGcScheduler(options.policy, options.startupIsBurst === false ? undefined : 0);
  let lastLoop = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const loop = performance.eventLoopUtilization();
    const sample = {
      heapBytes: heapBytes(),
      loopUtilization: performance.eventLoopUtilization(loop, lastLoop).utilization,
      activity: options.activity(),
    };
    lastLoop = loop;
    const now = performance.now();
    if (!scheduler.observe(sample, now)) return;
    collect();
    collect();
    const collectedMs = performance.now();
    const released = release?.trimMalloc();
    const droppedBytes = release?.dropLinkerTables();
    if (droppedBytes !== undefined && droppedBytes < 0 && !refusalLogged) {
      refusalLogged = true;
      log.info(
        "linker tables not dropped: node's are not in a read-only segment of their own here, or /proc/self/pagemap is unreadable",
      );
    }
    const after = heapBytes();
    const ended = performance.now();
    const pauseMs = ended - now;
    scheduler.collected(ended, pauseMs, after);
    log.debug(
      {
        beforeBytes: sample.heapBytes,
        afterBytes: after,
        pauseMs: Math.round(pauseMs),
        releaseMs: Math.round((ended - collectedMs) * 100) / 100,
        released,
        droppedBytes,
      },
      "idle: collected",
    );
    // The collection itself was loop work: it must not count as the next poll's busyness.
    lastLoop = performance.eventLoopUtilization();
  }, options.pollMs ?? DEFAULT_POLL_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
    },
  };
}

function defaultRelease(log: Logger): ReleaseMemory | undefined {
  const loaded = loadReleaseMemory();
  if (loaded.addon === undefined)
    log.info(
      { reason: loaded.reason },
      "release-memory addon not loaded: memory freed by a burst, and the linker tables, stay resident",
    );
  return loaded.addon;
}
