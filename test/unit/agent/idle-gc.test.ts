// The idle collector: it collects once after a burst when the agent has gone quiet, never while work continues
// (entries applied or the loop busy), never for a heap that did not grow by a burst's worth, never so often that its
// pauses take more than their share of the time; and the running version, with real timers and a real heap (in a
// child process, see idle-gc-child.ts), does the same.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { pino } from "pino";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type IdleGcPolicy, IdleGcScheduler, startIdleGc } from "../../../src/agent/idle-gc.js";

const MB = 1024 * 1024;
const POLICY: IdleGcPolicy = {
  burstBytes: 8 * MB,
  quietMs: 200,
  busyUtilization: 0.1,
  minIntervalMs: 1000,
  maxPauseShare: 0.05,
};
const POLL_MS = 50;
/** The running collector's check, in a process of its own (see there why). */
const CHILD = join(dirname(fileURLToPath(import.meta.url)), "idle-gc-child.ts");
const execFileAsync = promisify(execFile);

/**
 * Feeds `count` polls from `fromMs`, each with the given sample fields; returns the times the scheduler fired. Each
 * collection "pauses" `pauseMs` (default 40) and frees 6 MB.
 */
function feed(
  scheduler: IdleGcScheduler,
  fromMs: number,
  count: number,
  sample: (i: number) => { heapBytes: number; loopUtilization?: number; activity?: number },
  pauseMs = 40,
): number[] {
  const fired: number[] = [];
  for (let i = 0; i < count; i++) {
    const now = fromMs + i * POLL_MS;
    const s = sample(i);
    const fire = scheduler.observe(
      { heapBytes: s.heapBytes, loopUtilization: s.loopUtilization ?? 0.01, activity: s.activity ?? 0 },
      now,
    );
    if (fire) {
      fired.push(now);
      scheduler.collected(now + pauseMs, pauseMs, s.heapBytes - 6 * MB);
    }
  }
  return fired;
}

test("a burst followed by quiet: one collection, quietMs after the last busy poll", () => {
  const scheduler = new IdleGcScheduler(POLICY);
  feed(scheduler, 0, 10, () => ({ heapBytes: 20 * MB }));
  // The burst: 20 polls applying entries, the heap growing to 32 MB.
  const duringBurst = feed(scheduler, 500, 20, (i) => ({
    heapBytes: (20 + i * 0.6) * MB,
    activity: i + 1,
    loopUtilization: 0.9,
  }));
  assert.equal(duringBurst, []);
  // Then quiet (activity stays at 20): the first quiet poll is at 1500, the collection 200 ms later, once.
  const after = feed(scheduler, 1500, 100, () => ({ heapBytes: 32 * MB, activity: 20 }));
  assert.equal(after, [1700]);
});

test("with the start-up counted as a burst (startBytes 0): collected at the first quiet moment, without delaying the next burst's", () => {
  const scheduler = new IdleGcScheduler(POLICY, 0);
  // Start-up work (entries replayed), then a flat 20 MB heap: quiet from 250 ms, collected 200 ms later.
  feed(scheduler, 0, 5, (i) => ({ heapBytes: 20 * MB, activity: i }));
  assert.equal(
    feed(scheduler, 250, 5, () => ({ heapBytes: 20 * MB, activity: 4 })),
    [450],
  );
  // A bulk load right after: collected 200 ms after it ends, not minIntervalMs (1 s) after the start-up's.
  feed(scheduler, 500, 4, (i) => ({ heapBytes: (20 + i * 4) * MB, activity: 5 + i }));
  assert.equal(
    feed(scheduler, 700, 40, () => ({ heapBytes: 32 * MB, activity: 8 })),
    [900],
  );
  // Without it, the same flat heap is never collected.
  const plain = new IdleGcScheduler(POLICY);
  feed(plain, 0, 5, (i) => ({ heapBytes: 20 * MB, activity: i }));
  assert.equal(
    feed(plain, 250, 100, () => ({ heapBytes: 20 * MB, activity: 4 })),
    [],
  );
});

test("never while entries keep being applied, even with an idle-looking loop", () => {
  const scheduler = new IdleGcScheduler(POLICY);
  const fired = feed(scheduler, 0, 1000, (i) => ({ heapBytes: (20 + Math.min(i, 40)) * MB, activity: i }));
  assert.equal(fired, []);
});

test("never while the event loop is busy, even with no entry applied", () => {
  const scheduler = new IdleGcScheduler(POLICY);
  const fired = feed(scheduler, 0, 1000, (i) => ({ heapBytes: (20 + Math.min(i, 40)) * MB, loopUtilization: 0.5 }));
  assert.equal(fired, []);
});

test("a short pause between writes is not quiet enough", () => {
  const scheduler = new IdleGcScheduler(POLICY);
  feed(scheduler, 0, 1, () => ({ heapBytes: 20 * MB }));
  // One write every 150 ms (3 polls): the quiet never lasts 200 ms.
  const fired = feed(scheduler, 50, 600, (i) => ({ heapBytes: 40 * MB, activity: Math.floor(i / 3) }));
  assert.equal(fired, []);
});

test("a heap that grew less than a burst is left alone", () => {
  const scheduler = new IdleGcScheduler(POLICY);
  feed(scheduler, 0, 1, () => ({ heapBytes: 20 * MB }));
  const fired = feed(scheduler, 50, 400, () => ({ heapBytes: 27 * MB }));
  assert.equal(fired, []);
});

test("growth counts from the lowest heap seen (V8 collected on its own in between)", () => {
  const scheduler = new IdleGcScheduler(POLICY);
  feed(scheduler, 0, 1, () => ({ heapBytes: 30 * MB }));
  feed(scheduler, 50, 1, () => ({ heapBytes: 18 * MB, activity: 1 }));
  const fired = feed(scheduler, 100, 20, () => ({ heapBytes: 27 * MB, activity: 1 }));
  assert.equal(fired.length, 1);
});

test("after a short pause, a new burst waits minIntervalMs; after a long one, pause / maxPauseShare", () => {
  for (const [pauseMs, waitMs] of [
    [40, 1000],
    [120, 2400],
  ] as const) {
    const scheduler = new IdleGcScheduler(POLICY);
    feed(scheduler, 0, 1, () => ({ heapBytes: 20 * MB }));
    const first = feed(scheduler, 50, 10, () => ({ heapBytes: 30 * MB, activity: 1 }), pauseMs);
    assert.equal(first, [300]);
    // A second burst right after: quiet again, grown again, but too soon; it runs once the wait has passed.
    feed(scheduler, 400, 5, (i) => ({ heapBytes: (30 + i * 3) * MB, activity: 2 + i }));
    const second = feed(scheduler, 650, 100, () => ({ heapBytes: 42 * MB, activity: 6 }), pauseMs);
    // The first poll (every 50 ms from 650) at or after the collection's end + the wait.
    const allowed = 300 + pauseMs + waitMs;
    assert.equal(second, [650 + Math.ceil((allowed - 650) / POLL_MS) * POLL_MS], `pause ${pauseMs} ms`);
  }
});

test("bursts separated by quiet: one collection per burst, never more than the pause share allows", () => {
  const scheduler = new IdleGcScheduler(POLICY);
  feed(scheduler, 0, 1, () => ({ heapBytes: 20 * MB }));
  let heap = 20 * MB;
  let activity = 0;
  const fired: number[] = [];
  // 60 rounds of 100 ms of writes growing the heap by 10 MB, then 400 ms of quiet.
  for (let round = 0; round < 60; round++) {
    const start = 50 + round * 500;
    feed(scheduler, start, 2, () => {
      heap += 5 * MB;
      return { heapBytes: heap, activity: ++activity };
    });
    fired.push(...feed(scheduler, start + 100, 8, () => ({ heapBytes: heap, activity }), 100));
  }
  // A 100 ms pause allows one per 2 s (5%): 30 s of rounds, 15 collections at most, 2 s apart at least.
  assert.ok(fired.length >= 10 && fired.length <= 15, `${fired.length} collections`);
  for (let i = 1; i < fired.length; i++) assert.ok(fired[i]! - fired[i - 1]! >= 2100, `gap before #${i}`);
});

test("running: a retained burst of Buffers, then quiet, makes exactly one double collection, then one release of memory; none while busy", async () => {
  // Rejects, with the child's stderr in the error, if the child fails.
  const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", CHILD]);
  const result = JSON.parse(stdout) as {
    whileBusy: number;
    onceQuiet: number;
    later: number;
    releases: string[];
    retained: number;
  };
  assert.is(result.whileBusy, 0, "no collection while entries are applied");
  assert.is(result.onceQuiet, 2, "one collection (two full GCs) once quiet");
  assert.is(result.later, 2, "and only one");
  assert.equal(result.releases, ["trim:2", "drop:2"], "malloc trimmed and linker tables dropped once, after it");
  assert.is(result.retained, 12);
});

test("running: linker tables the addon refuses to drop (-1) are reported once, not at every collection", async () => {
  const lines: string[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(line) });
  let drops = 0;
  const idle = startIdleGc({
    logger,
    activity: () => 0,
    // A 1-byte burst: with the Buffers retained below, every quiet poll past a 40 ms spacing collects.
    policy: { burstBytes: 1, quietMs: 0, busyUtilization: 1, minIntervalMs: 40, maxPauseShare: 1 },
    pollMs: 5,
    collect: () => {},
    release: {
      trimMalloc: () => false,
      dropLinkerTables: () => {
        drops++;
        return -1;
      },
    },
  });
  const retained: Buffer[] = [];
  const grow = setInterval(() => retained.push(Buffer.alloc(64 * 1024)), 5);
  await new Promise((r) => setTimeout(r, 400));
  clearInterval(grow);
  idle.stop();
  assert.ok(drops >= 2, `${drops} collections`);
  assert.is(lines.filter((l) => l.includes("linker tables not dropped")).length, 1, lines.join(""));
});

test.run();
