// The key space's compact index: a key with one kept revision is indexed by that revision itself, a key with several
// by a list, and compaction folds lists back. Reads at every revision, prev_kv, compaction and snapshots must not
// depend on which form a key is in; a property test compares the key space with a plain model of every revision.
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type KeptRevisions, type KeyRevision, KeySpace } from "../../../src/store/mvcc/key-space.js";
import { type DecodedKeySpace, decodeSnapshot, encodeSnapshot } from "../../../src/store/mvcc/snapshot-codec.js";

function write(space: KeySpace, changes: Array<[string, string | null]>): number {
  const revision = space.currentRevision + 1;
  for (const [key, value] of changes) {
    if (value === null) space.delete(key, revision);
    else space.put(key, value, 0, revision);
  }
  space.commit(revision);
  return revision;
}

/** The revisions of a key as dump() gives them: its list, or its only revision. */
function revisionsOf(kept: KeptRevisions): readonly KeyRevision[] {
  return "revisions" in kept ? kept.revisions : [kept];
}

/** `space` through the snapshot codec and back: what a replica restoring a snapshot of it loads. */
function throughSnapshot(space: KeySpace): DecodedKeySpace {
  const { histories, events } = space.dump();
  const { currentRevision, compactRevision } = space;
  const leases: DecodedKeySpace["leases"] = [];
  const state = {
    appliedIndex: 0,
    currentRevision,
    compactRevision,
    lastGeneratedLeaseId: 0,
    leases,
    histories,
    events,
  };
  return decodeSnapshot(encodeSnapshot(state));
}

/** The index's entries: a bare revision (has `mod`) or a list (has `revisions`). */
function forms(space: KeySpace): Record<string, "single" | number> {
  const out: Record<string, "single" | number> = {};
  for (const entry of space.index.all() as Array<KeyRevision | { key: string; revisions: KeyRevision[] }>) {
    out[entry.key] = "revisions" in entry ? entry.revisions.length : "single";
  }
  return out;
}

test("keys with one kept revision are indexed by the revision itself; compaction folds lists back", () => {
  const space = new KeySpace();
  write(space, [
    ["a", "1"],
    ["b", "1"],
  ]);
  assert.equal(forms(space), { a: "single", b: "single" });
  const second = write(space, [["a", "2"]]);
  write(space, [["b", null]]);
  assert.equal(forms(space), { a: 2, b: 2 });
  space.compact(second);
  // a keeps only its revision at `second`; b keeps its live revision below `second` (deleted after it).
  assert.equal(forms(space), { a: "single", b: 2 });
  space.compact(space.currentRevision);
  assert.equal(forms(space), { a: "single", b: "single" }, "a tombstone at the compact revision stays");
  write(space, [["c", "1"]]);
  space.compact(space.currentRevision);
  assert.equal(forms(space), { a: "single", c: "single" }, "a tombstone below the compact revision goes");
});

test("reads, prev_kv and events see the same history whatever the form of the key", () => {
  const space = new KeySpace();
  const r2 = write(space, [["k", "one"]]);
  assert.is(space.get("k", r2 - 1), undefined, "not yet written");
  assert.is(space.get("k", r2)?.value, "one");
  const first = space.get("k", r2)!;
  assert.is(space.previousOf(first), undefined, "a single first revision has no previous");
  const r3 = write(space, [["k", "two"]]);
  const second = space.get("k", r3)!;
  assert.is(space.previousOf(second)?.value, "one");
  assert.is(space.get("k", r2)?.value, "one", "history kept");
  space.compact(r3);
  assert.is(space.get("k", r3)?.value, "two");
  assert.is(space.previousOf(second), undefined, "the previous revision is compacted away");
  const r4 = write(space, [["k", null]]);
  assert.is(space.get("k", r4), undefined);
  assert.is(space.previousOf(space.eventsFrom(r4, 10)[0]!)?.value, "two", "a delete's prev_kv");
  assert.equal(
    space.eventsFrom(0, 10).map((e) => [e.mod, e.value]),
    [
      [r3, "two"],
      [r4, null],
    ],
  );
});

test("a snapshot keeps every revision and the event log, and its restore the compact form", () => {
  const space = new KeySpace();
  write(space, [
    ["a", "1"],
    ["b", "1"],
  ]);
  write(space, [["a", "2"]]);
  const { histories } = space.dump();
  assert.equal(
    histories.map((h) => [h.key, revisionsOf(h).map((r) => r.value)]),
    [
      ["a", ["1", "2"]],
      ["b", ["1"]],
    ],
  );
  const copy = new KeySpace();
  copy.load(throughSnapshot(space));
  assert.equal(forms(copy), { a: 2, b: "single" });
  assert.is(copy.get("a", 2)?.value, "1");
  assert.is(copy.eventsFrom(0, 10).length, 3);
});

test("a snapshot finds each event's key by its record, or by its key when the log holds copies of the records", () => {
  const space = new KeySpace();
  write(space, [
    ["a", "1"],
    ["b", "1"],
  ]);
  write(space, [["a", "2"]]);
  write(space, [
    ["b", null],
    ["c", "1"],
  ]);
  const { histories, events } = space.dump();
  const { currentRevision, compactRevision } = space;
  const base = { appliedIndex: 0, currentRevision, compactRevision, lastGeneratedLeaseId: 0, leases: [], histories };
  const byRecord = encodeSnapshot({ ...base, events });
  const byKey = encodeSnapshot({ ...base, events: events.map((e) => ({ ...e })) });
  assert.ok(Buffer.from(byRecord).equals(byKey), "both ways give the same bytes");
  assert.equal(
    decodeSnapshot(byRecord).events.map((e) => `${e.key}@${e.mod}`),
    ["a@2", "b@2", "a@3", "b@4", "c@4"],
  );
});

test("a revision with a thousand events (a range deleted at once) is encoded, and restored, whole", () => {
  const space = new KeySpace();
  const keys = Array.from({ length: 1000 }, (_, i) => `k${String(i).padStart(4, "0")}`);
  write(
    space,
    keys.map((k) => [k, "v"]),
  );
  write(
    space,
    keys.map((k) => [k, null]),
  );
  const copy = new KeySpace();
  copy.load(throughSnapshot(space));
  assert.is(copy.eventsFrom(0, 5000).length, 2000);
  assert.is(copy.get("k0999", 2)?.value, "v");
  assert.is(copy.get("k0999", 3), undefined);
});

type Op = { kind: "put"; key: string; value: string } | { kind: "del"; key: string } | { kind: "compact" };

test("property: every read at every kept revision matches a model of all revisions", () => {
  const keys = ["a", "b", "c", "d"];
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant("put" as const), key: fc.constantFrom(...keys), value: fc.string({ maxLength: 3 }) }),
    fc.record({ kind: fc.constant("del" as const), key: fc.constantFrom(...keys) }),
    fc.record({ kind: fc.constant("compact" as const) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), fc.nat(), (ops, seed) => {
      const space = new KeySpace();
      // model.get(revision) = the live values at that revision
      const model = new Map<number, Map<string, string>>([[1, new Map()]]);
      let live = new Map<string, string>();
      for (const [i, step] of ops.entries()) {
        if (step.kind === "compact") {
          const target = space.compactRevision + 1 + ((seed + i) % (space.currentRevision - space.compactRevision));
          if (target > space.compactRevision && target <= space.currentRevision) space.compact(target);
          continue;
        }
        if (step.kind === "del" && !live.has(step.key)) continue;
        write(space, [[step.key, step.kind === "put" ? step.value : null]]);
        live = new Map(live);
        if (step.kind === "put") live.set(step.key, step.value);
        else live.delete(step.key);
        model.set(space.currentRevision, live);
      }
      const from = Math.max(1, space.compactRevision);
      for (let revision = from; revision <= space.currentRevision; revision++) {
        for (const key of keys) {
          assert.is(space.get(key, revision)?.value, model.get(revision)!.get(key), `${key} at ${revision}`);
        }
        const visible: string[] = [];
        space.forEachLive("", null, revision, (kv) => {
          visible.push(kv.key);
          return true;
        });
        assert.equal(visible, [...model.get(revision)!.keys()].sort(), `keys at ${revision}`);
      }
      // A snapshot round trip answers the same.
      const copy = new KeySpace();
      copy.load(throughSnapshot(space));
      for (const key of keys) assert.is(copy.get(key, space.currentRevision)?.value, live.get(key));
    }),
    { numRuns: 300 },
  );
});

test.run();
