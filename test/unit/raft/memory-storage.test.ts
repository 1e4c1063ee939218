// MemoryStorage is what a driver keeps as the cache of its WAL: its append/snapshot/compact rules matter.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CompactedError, type Entry, MemoryStorage, SnapshotOutOfDateError } from "../../../src/store/raft/index.js";

const entry = (index: number, term: number): Entry => ({ term, index, type: "normal", data: new Uint8Array([index]) });
const conf = { voters: [1, 2, 3], learners: [] };

test("append replaces a conflicting suffix and refuses gaps", () => {
  const s = new MemoryStorage();
  s.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
  s.append([entry(2, 2)]);
  assert.is(s.lastIndex(), 2);
  assert.is(s.term(2), 2);
  assert.throws(() => s.append([entry(5, 2)]), /gap/);
});

test("snapshot then compact keeps a tail; reads below it are CompactedError", () => {
  const s = new MemoryStorage();
  s.append([1, 2, 3, 4, 5].map((i) => entry(i, 1)));
  s.createSnapshot(4, conf, new Uint8Array([9]));
  s.compact(2);
  assert.is(s.firstIndex(), 3);
  assert.is(s.term(2), 1, "the compacted boundary's term stays known");
  assert.equal(
    s.entries(3, 6, 1 << 20).map((e) => e.index),
    [3, 4, 5],
  );
  assert.throws(
    () => s.entries(2, 4, 1 << 20),
    (e: unknown) => e instanceof CompactedError,
  );
  assert.equal(s.initialState().confState, conf);
  assert.throws(
    () => s.createSnapshot(3, conf, new Uint8Array()),
    (e: unknown) => e instanceof SnapshotOutOfDateError,
  );
  assert.throws(() => s.compact(5), /beyond snapshot/);
});

test("entries stop at maxBytes but always return at least one", () => {
  const s = new MemoryStorage();
  s.append([1, 2, 3].map((i) => entry(i, 1)));
  assert.is(s.entries(1, 4, 1).length, 1);
  assert.is(s.entries(1, 4, 2 * 17).length, 2);
});

test("applySnapshot from a leader replaces the whole log", () => {
  const s = new MemoryStorage();
  s.append([entry(1, 1), entry(2, 1)]);
  s.applySnapshot({ metadata: { index: 10, term: 3, confState: conf }, data: new Uint8Array() });
  assert.is(s.firstIndex(), 11);
  assert.is(s.lastIndex(), 10);
  assert.is(s.term(10), 3);
  s.append([entry(11, 3)]);
  assert.is(s.lastIndex(), 11);
});

test.run();
