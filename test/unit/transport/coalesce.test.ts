// Merging consecutive appends: exact (same result as the parts in order), and only when they continue each other.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Entry, Message } from "../../../src/store/raft/types.js";
import { coalesceAppends } from "../../../src/store/transport/coalesce.js";

const entry = (index: number, term = 2): Entry => ({ term, index, type: "normal", data: new Uint8Array([index]) });

function app(to: number, index: number, logTerm: number, entries: Entry[], commit: number): Message {
  return {
    type: "app",
    from: 1,
    to,
    term: 2,
    logTerm,
    index,
    entries,
    commit,
    reject: false,
    rejectHint: 0,
    context: "",
    snapshot: null,
    commitNotice: false,
  };
}

test("a run of appends that continue each other becomes one, keeping the prefix check and the last commit", () => {
  const merged = coalesceAppends([
    app(2, 10, 1, [entry(11)], 9),
    app(2, 11, 2, [entry(12)], 10),
    app(2, 12, 2, [entry(13)], 11),
  ]);
  assert.is(merged.length, 1);
  assert.is(merged[0]?.index, 10);
  assert.is(merged[0]?.logTerm, 1);
  assert.equal(
    merged[0]?.entries.map((e) => e.index),
    [11, 12, 13],
  );
  assert.is(merged[0]?.commit, 11);
});

test("appends that do not continue, other peers and other types keep their place", () => {
  const heartbeat: Message = { ...app(2, 0, 0, [], 5), type: "heartbeat" };
  const input = [
    app(2, 10, 1, [entry(11)], 9),
    app(3, 11, 2, [entry(12)], 9), // another peer
    app(2, 13, 2, [entry(14)], 9), // a gap: index 12 missing
    heartbeat,
    app(2, 14, 2, [entry(15)], 9), // follows a heartbeat: not merged across it
    app(2, 15, 1, [entry(16)], 9), // wrong logTerm
  ];
  assert.equal(coalesceAppends(input), input);
});

test("forwarded proposals merge into one; conf changes stay alone", () => {
  const prop = (data: number, type: Entry["type"] = "normal"): Message => ({
    ...app(1, 0, 0, [{ term: 0, index: 0, type, data: new Uint8Array([data]) }], 0),
    type: "prop",
    from: 2,
  });
  const merged = coalesceAppends([prop(1), prop(2), prop(3, "confChange"), prop(4), prop(5)]);
  assert.equal(
    merged.map((m) => m.entries.map((e) => e.data[0])),
    [[1, 2], [3], [4, 5]],
  );
});

test.run();
