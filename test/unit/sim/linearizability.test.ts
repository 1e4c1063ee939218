// The WGL checker must accept linearizable histories and, crucially, reject non-linearizable ones — including
// when a (wrong) witness order is offered as a hint.
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  checkLinearizable,
  type HistoryOp,
  type KvOperation,
  type KvOutcome,
} from "../../../src/sim/linearizability.js";

let nextId = 0;
function op(
  client: number,
  o: KvOperation,
  callTime: number,
  returnTime: number | null,
  outcome: KvOutcome | undefined,
  position?: number,
): HistoryOp {
  return {
    id: nextId++,
    client,
    op: o,
    callTime,
    returnTime,
    outcome,
    ...(position === undefined ? {} : { position }),
  };
}
const put = (value: string): KvOperation => ({ kind: "put", key: "x", value });
const get: KvOperation = { kind: "get", key: "x" };
const cas = (expected: string | null, value: string): KvOperation => ({ kind: "cas", key: "x", expected, value });

test("known-bad: a read returns a value overwritten before the read started", () => {
  const history = [
    op(1, put("a"), 0, 1, "ok"),
    op(1, put("b"), 2, 3, "ok"),
    op(2, get, 4, 5, { read: "a" }), // stale read: b was acknowledged before this read began
  ];
  const result = checkLinearizable(history);
  assert.is(result.ok, false);
  assert.is(result.key, "x");
});

test("known-bad: two successful CAS from the same expected value (lost update)", () => {
  const history = [
    op(1, put("v0"), 0, 1, "ok"),
    op(2, cas("v0", "v1"), 2, 5, "ok"),
    op(3, cas("v0", "v2"), 3, 6, "ok"),
  ];
  assert.is(checkLinearizable(history).ok, false);
});

test("known-bad: a wrong witness order is not trusted", () => {
  const history = [
    op(1, put("a"), 0, 1, "ok", 1),
    op(1, put("b"), 2, 3, "ok", 2),
    op(2, get, 4, 5, { read: "a" }, 1.5), // the hint places the read between the writes, against real time
  ];
  assert.is(checkLinearizable(history).ok, false);
});

test("concurrent operations may take effect in either order", () => {
  const history = [
    op(1, put("a"), 0, 10, "ok"),
    op(2, put("b"), 1, 11, "ok"),
    op(3, get, 2, 12, { read: "a" }),
    op(4, get, 13, 14, { read: "a" }), // so b took effect before a
    op(5, cas("a", "c"), 15, 16, "ok"),
    op(6, get, 17, 18, { read: "c" }),
  ];
  assert.is(checkLinearizable(history).ok, true);
});

test("an unknown-outcome write may or may not have taken effect", () => {
  const maybe = [
    op(1, put("a"), 0, 1, "ok"),
    op(2, put("lost?"), 2, null, undefined),
    op(3, get, 5, 6, { read: "lost?" }),
  ];
  assert.is(checkLinearizable(maybe).ok, true);
  const notYet = [
    op(1, put("a"), 0, 1, "ok"),
    op(2, put("later"), 2, null, undefined),
    op(3, get, 5, 6, { read: "a" }),
  ];
  assert.is(checkLinearizable(notYet).ok, true);
});

test("a correct witness is accepted without search; keys are checked independently", () => {
  const history = [
    op(1, put("a"), 0, 3, "ok", 1),
    op(2, get, 1, 2, { read: null }, 0.5),
    op(3, { kind: "put", key: "y", value: "z" }, 0, 1, "ok", 2),
    op(1, get, 4, 5, { read: "a" }, 2.5),
  ];
  const result = checkLinearizable(history);
  assert.is(result.ok, true);
  assert.is(result.states, 0, "the witness fast path needed no search");
});

test.run();
