// The ordered key index (chunks, binary-searched for point lookups too): against a plain sorted model, any
// sequence of inserts, replaces, rewrites and rebuilds gives the same lookups, ranges and size, across chunk splits.
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { KeyIndex } from "../../../src/store/mvcc/key-index.js";

interface Item {
  key: string;
  tag: number;
}

type Op =
  | { kind: "upsert"; key: string; tag: number }
  | { kind: "rewrite"; dropBelowTag: number }
  | { kind: "rebuild" };

/** Keys over a small alphabet (binary strings, like the store's): many shared prefixes, many collisions. */
const keyArb = fc
  .array(fc.constantFrom("a", "b", "\u0000", "\u00ff", "/"), { minLength: 0, maxLength: 4 })
  .map((chars) => chars.join(""));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 20, arbitrary: fc.record({ kind: fc.constant("upsert" as const), key: keyArb, tag: fc.nat(100) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("rewrite" as const), dropBelowTag: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("rebuild" as const) }) },
);

function sortedModel(model: Map<string, Item>): Item[] {
  return [...model.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function apply(index: KeyIndex<Item>, model: Map<string, Item>, op: Op): void {
  if (op.kind === "upsert") {
    const item = { key: op.key, tag: op.tag };
    if (index.get(op.key) === undefined) index.insert(item);
    else index.replace(item);
    model.set(op.key, item);
  } else if (op.kind === "rewrite") {
    index.rewriteAll((item) => (item.tag < op.dropBelowTag ? undefined : { ...item, tag: item.tag + 1 }));
    for (const [key, item] of [...model]) {
      if (item.tag < op.dropBelowTag) model.delete(key);
      else model.set(key, { ...item, tag: item.tag + 1 });
    }
  } else {
    index.rebuild(index.all());
  }
}

function check(index: KeyIndex<Item>, model: Map<string, Item>, probes: string[]): void {
  const expected = sortedModel(model);
  assert.equal(index.all(), expected);
  assert.is(index.size, model.size);
  for (const key of probes) assert.equal(index.get(key), model.get(key), `get(${JSON.stringify(key)})`);
  for (const start of probes) {
    for (const end of [...probes, null]) {
      const seen: Item[] = [];
      index.forEachInRange(start, end, (item) => {
        seen.push(item);
        return true;
      });
      const want = expected.filter((i) => i.key >= start && (end === null || i.key < end));
      assert.equal(seen, end !== null && end <= start ? [] : want, `range [${start}, ${end})`);
    }
  }
}

test("model: inserts, replaces, rewrites and rebuilds keep lookups, ranges and size right", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 120 }), fc.array(keyArb, { maxLength: 6 }), (ops, probes) => {
      const index = new KeyIndex<Item>();
      const model = new Map<string, Item>();
      for (const op of ops) apply(index, model, op);
      check(index, model, probes);
    }),
    { numRuns: 300 },
  );
});

test("thousands of keys inserted out of order (many chunk splits): every key found, absent keys not", () => {
  const index = new KeyIndex<Item>();
  const keys = Array.from({ length: 5000 }, (_, i) => `/k/${((i * 7919) % 5000).toString().padStart(5, "0")}`);
  for (const [tag, key] of keys.entries()) index.insert({ key, tag });
  assert.is(index.size, 5000);
  for (const [tag, key] of keys.entries()) assert.equal(index.get(key), { key, tag });
  for (const absent of ["", "/k/", "/k/00000x", "/k/5", "/l", "\u00ff"]) assert.is(index.get(absent), undefined);
  const all = index.all().map((i) => i.key);
  assert.equal(all, [...keys].sort());
  index.replace({ key: "/k/04999", tag: -1 });
  assert.equal(index.get("/k/04999"), { key: "/k/04999", tag: -1 });
});

test("programmer errors crash: a second insert of a key, a replace of an unknown key, an unsorted rebuild", () => {
  const index = new KeyIndex<Item>();
  assert.throws(() => index.replace({ key: "a", tag: 0 }), /unindexed/);
  index.insert({ key: "a", tag: 0 });
  assert.throws(() => index.insert({ key: "a", tag: 1 }), /already indexed/);
  assert.throws(() => index.replace({ key: "b", tag: 0 }), /unindexed/);
  assert.throws(
    () =>
      index.rebuild([
        { key: "b", tag: 0 },
        { key: "a", tag: 0 },
      ]),
    /strictly ascending/,
  );
  // The failed rebuild left the index as it was.
  assert.equal(index.all(), [{ key: "a", tag: 0 }]);
  assert.is(index.size, 1);
});

test.run();
