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
  for (let i = 0; i < 5; i++) {
    scheduler.trigger("t", { minMs: 40, maxMs: 1000 });
    await sleep(10);
  }
  await sleep(100);
  assert.is(batches.length, 1);
  assert.ok(batches[0]!.at >= 80, `rendered after the last change + min (${batches[0]!.at} ms)`);
  scheduler.stop();
});

test("max: constant churn still renders by the max delay", async () => {
  let fired = 0;
  const scheduler = new QuiescenceScheduler(() => {
    fired += 1;
  });
  const until = performance.now() + 200;
  while (performance.now() < until) {
    scheduler.trigger("t", { minMs: 30, maxMs: 60 });
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
