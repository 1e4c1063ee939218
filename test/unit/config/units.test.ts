// The duration parser: single units, Go-style sums of them, and the inputs it must refuse.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseDurationMs } from "../../../src/units.js";

test("a number and a unit", () => {
  const cases: Array<[string, number]> = [
    ["0", 0],
    ["250ms", 250],
    ["10s", 10_000],
    ["1.5s", 1_500],
    ["2m", 120_000],
    ["1h", 3_600_000],
    [" 5s ", 5_000],
  ];
  for (const [text, ms] of cases) assert.is(parseDurationMs(text), ms, text);
});

test("sums of parts, as Go prints durations (etcd, confd and consul-template configs use them)", () => {
  const cases: Array<[string, number]> = [
    ["1m30s", 90_000],
    ["1h0m0s", 3_600_000],
    ["2h45m", 9_900_000],
    ["1s500ms", 1_500],
    ["1m0.5s", 60_500],
  ];
  for (const [text, ms] of cases) assert.is(parseDurationMs(text), ms, text);
});

test("refused: no unit, an unknown unit, spaces between parts, a sign, nothing", () => {
  for (const text of ["", "30", "10 seconds", "1m 30s", "-1s", "+1s", "1x", "s", "1.s", "1ns", "1mss"]) {
    assert.throws(() => parseDurationMs(text), /invalid duration .*like 250ms, 10s or 1m30s/, JSON.stringify(text));
  }
});

test.run();
