// The anti-flapping rules of HealthTracker, on explicit sequences and on random ones.
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { HealthTracker } from "../../../src/services/health.js";

test("starts pending and decides only when a threshold is met", () => {
  const tracker = new HealthTracker(2, 3);
  assert.is(tracker.health, "pending");
  assert.is(tracker.record(true), undefined);
  assert.is(tracker.health, "pending");
  assert.is(tracker.record(true), "passing");
  assert.is(tracker.record(true), undefined, "no change is reported twice");
});

test("a single failure between passes does not flap", () => {
  const tracker = new HealthTracker(1, 3);
  tracker.record(true);
  for (let round = 0; round < 5; round++) {
    assert.is(tracker.record(false), undefined);
    assert.is(tracker.record(false), undefined);
    assert.is(tracker.record(true), undefined);
    assert.is(tracker.health, "passing");
  }
  tracker.record(false);
  tracker.record(false);
  assert.is(tracker.health, "passing");
  assert.is(tracker.record(false), "critical");
});

test("recovery needs healthy_threshold passes in a row", () => {
  const tracker = new HealthTracker(3, 1);
  assert.is(tracker.record(false), "critical");
  tracker.record(true);
  tracker.record(true);
  tracker.record(false);
  tracker.record(true);
  tracker.record(true);
  assert.is(tracker.health, "critical");
  assert.is(tracker.record(true), "passing");
});

test("property: the state is what the last run of identical results says once it reaches its threshold", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 5 }),
      fc.array(fc.boolean()),
      (up, down, results) => {
        const tracker = new HealthTracker(up, down);
        let expected: string = "pending";
        let run = 0;
        let last: boolean | undefined;
        for (const result of results) {
          run = result === last ? run + 1 : 1;
          last = result;
          if (result && run >= up) expected = "passing";
          if (!result && run >= down) expected = "critical";
          const before = tracker.health;
          const changed = tracker.record(result);
          assert.is(tracker.health, expected);
          assert.is(changed, before === expected ? undefined : expected);
        }
      },
    ),
  );
});

test("thresholds below 1 are programmer errors", () => {
  assert.throws(() => new HealthTracker(0, 1));
  assert.throws(() => new HealthTracker(1, 0));
});

test.run();
