// Quiescence: wait 0 batches same-tick triggers; min waits for stillness; max bounds the delay under churn.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { QuiescenceScheduler } from "../../../src/watch/scheduler.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("wait 0: triggers in the same tick flush as one batch", async () => {
  const batches: string[][] = [];
  const scheduler = new QuiescenceScheduler((names) => batches.push(names));
  scheduler.trigger("a", undefined);
  scheduler.trigger("b", { minMs: 0, maxMs: 0 });
  scheduler.trigger("a", undefined);
  await sleep(5);
  assert.equal(batches, [["a", "b"]]);
  scheduler.stop();
});

test("min: a burst renders once, after the data stays still", async () => {
  const batches: Array<{ names: string[]; at: number }> = [];
  const start = performance.now();
  const scheduler = new QuiescenceScheduler((names) => batches.push({ names, at: performance.now() - start }));
  // Gaps of 10 ms against a min of 300 ms: only an event-loop stall of ~300 ms (not a busy CI box's usual 30 ms)
  // could split the burst.
  let lastTriggerAt = 0;
  for (let i = 0; i < 5; i++) {
    scheduler.trigger("t", { minMs: 300, maxMs: 5_000 });
    lastTriggerAt = performance.now() - start;
    await sleep(10);
  }
  await sleep(800);
  assert.equal(
    batches.map((batch) => batch.names),
    [["t"]],
  );
  assert.ok(
    batches[0]!.at >= lastTriggerAt + 295,
    `rendered after the last change (${Math.round(lastTriggerAt)} ms) + min (at ${Math.round(batches[0]!.at)} ms)`,
  );
  scheduler.stop();
});

test("max: constant churn still renders by the max delay", async () => {
  let fired = 0;
  const scheduler = new QuiescenceScheduler(() => {
    fired += 1;
  });
  // A change every 5 ms never leaves 100 ms of stillness, so only the 200 ms max can fire it: about 3 times in
  // 700 ms. A stall longer than min fires it early, which only adds to the count.
  const until = performance.now() + 700;
  while (performance.now() < until) {
    scheduler.trigger("t", { minMs: 100, maxMs: 200 });
    await sleep(5);
  }
  assert.ok(fired >= 2, `fired ${fired} times under churn`);
  scheduler.stop();
});

test("cancel and stop drop pending renders", async () => {
  let fired = 0;
  const scheduler = new QuiescenceScheduler(() => {
    fired += 1;
  });
  scheduler.trigger("a", { minMs: 20, maxMs: 20 });
  scheduler.cancel("a");
  scheduler.trigger("b", { minMs: 20, maxMs: 20 });
  scheduler.stop();
  await sleep(50);
  assert.is(fired, 0);
});

test.run();
