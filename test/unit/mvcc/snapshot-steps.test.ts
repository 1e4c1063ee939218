// A snapshot encoded a step at a time, while the store goes on applying writes and compactions between the steps,
// holds exactly the state at the moment it was started: the bytes equal those of snapshot() called then.
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Command } from "../../../src/store/mvcc/commands.js";
import { KvStore } from "../../../src/store/mvcc/kv-store.js";
import { b } from "./helpers.js";

type Op =
  | { kind: "put"; key: string; value: string; lease: number }
  | { kind: "del"; key: string }
  | { kind: "grant"; id: number }
  | { kind: "compact"; back: number };

const keyArb = fc.constantFrom("a", "b", "c/1", "c/2", "d\u00ff");
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("put" as const),
      key: keyArb,
      value: fc.string({ maxLength: 6 }),
      lease: fc.constantFrom(0, 0, 7),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("del" as const), key: keyArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("grant" as const), id: fc.constantFrom(7, 8) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact" as const), back: fc.nat(4) }) },
);

/** Applies `op` (a request etcd refuses, such as a put on a missing lease, changes nothing and is fine here). */
function applyOp(store: KvStore, index: number, op: Op): void {
  let command: Command;
  switch (op.kind) {
    case "put":
      command = { type: "put", request: { key: b(op.key), value: b(op.value), lease: op.lease } };
      break;
    case "del":
      command = { type: "deleteRange", request: { key: b(op.key) } };
      break;
    case "grant":
      command = { type: "leaseGrant", request: { ID: op.id, TTL: 60 } };
      break;
    case "compact":
      command = { type: "compaction", request: { revision: Math.max(1, store.revision - op.back) } };
      break;
  }
  store.apply(command, index);
}

test("stepwise snapshot = snapshot() at its start, whatever is applied between the steps", () => {
  fc.assert(
    fc.property(
      fc.array(opArb, { maxLength: 60 }),
      fc.array(opArb, { maxLength: 60 }),
      fc.integer({ min: 1, max: 5 }),
      (before, during, revisionsPerStep) => {
        const store = new KvStore();
        let index = 0;
        for (const op of before) applyOp(store, ++index, op);
        const expected = store.snapshot();
        const steps = store.snapshotInSteps(revisionsPerStep);
        let applied = 0;
        let result: Uint8Array | undefined;
        for (;;) {
          const step = steps.next();
          if (step.done === true) {
            result = step.value;
            break;
          }
          // Between two steps, a few more writes (or a compaction) land in the store being encoded.
          for (let i = 0; i < 3 && applied < during.length; i++) applyOp(store, ++index, during[applied++]!);
        }
        assert.equal(Buffer.from(result).toString("hex"), Buffer.from(expected).toString("hex"));
        const restored = new KvStore();
        restored.restore(result);
        assert.equal(Buffer.from(restored.snapshot()).toString("hex"), Buffer.from(expected).toString("hex"));
      },
    ),
    { numRuns: 300 },
  );
});

test("a large store is encoded in many steps", () => {
  const store = new KvStore();
  for (let i = 0; i < 1000; i++) applyOp(store, i + 1, { kind: "put", key: `k${i}`, value: "v", lease: 0 });
  const steps = store.snapshotInSteps(100);
  let pauses = 0;
  for (let step = steps.next(); step.done !== true; step = steps.next()) pauses++;
  // 1,000 keys of one revision, then their 1,000 events: a pause after every 100 revisions or events written.
  assert.is(pauses, 20);
});

test.run();
