// The simulator itself: many seeds pass all invariants, linearizability and liveness; a seed replays to the same
// run; the fault machinery really injects faults; and the disk model really loses unsynced writes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SimDisk } from "../../../src/sim/disk.js";
import { decodeCommand, encodeCommand, KvStateMachine } from "../../../src/sim/kv.js";
import { runSimulation } from "../../../src/sim/simulation.js";

const SEEDS = 300;
const STEPS = 2000;

test(`${SEEDS} seeds pass every safety invariant, linearizability and liveness (${STEPS} steps each)`, () => {
  const failures: string[] = [];
  const totals = { elections: 0, preVoteRejections: 0, snapshotsSent: 0, membershipChanges: 0, transfers: 0 };
  const more = { readsServed: 0, crashes: 0, partitions: 0, pauses: 0, historyOps: 0 };
  for (let seed = 1; seed <= SEEDS; seed++) {
    const result = runSimulation({ seed, steps: STEPS });
    if (!result.ok)
      failures.push(`seed ${seed}: ${result.failure} (replay: npm run sim -- --seed ${seed} --steps ${STEPS})`);
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] += result.stats[key];
    for (const key of Object.keys(more) as (keyof typeof more)[]) more[key] += result.stats[key];
  }
  assert.equal(failures, []);
  // Every feature was exercised somewhere in the batch (otherwise the pass would prove little).
  for (const [key, value] of Object.entries({ ...totals, ...more })) assert.ok(value > 0, `${key} never happened`);
});

test("a seed replays to exactly the same run", () => {
  for (const seed of [7, 42, 1234]) {
    const a = runSimulation({ seed, steps: 800 });
    const b = runSimulation({ seed, steps: 800 });
    assert.is(a.traceHash, b.traceHash);
    assert.equal(a.stats, b.stats);
  }
  assert.is.not(runSimulation({ seed: 1, steps: 800 }).traceHash, runSimulation({ seed: 2, steps: 800 }).traceHash);
});

test("the disk model loses exactly the writes that were not synced", () => {
  const disk = new SimDisk();
  const entry = (index: number) => ({ term: 1, index, type: "normal" as const, data: new Uint8Array([index]) });
  disk.append([entry(1), entry(2)]);
  disk.setHardState({ term: 1, vote: 1, commit: 2 });
  disk.sync();
  disk.append([entry(3)]);
  disk.setHardState({ term: 2, vote: 0, commit: 3 });
  assert.is(disk.live.lastIndex(), 3);
  assert.is(disk.crash(), 2, "two unsynced writes lost");
  assert.is(disk.live.lastIndex(), 2);
  assert.equal(disk.live.initialState().hardState, { term: 1, vote: 1, commit: 2 });
});

test("the KV state machine applies each client command once and survives a snapshot", () => {
  const kv = new KvStateMachine();
  const put = { client: 1, seq: 1, op: "put" as const, key: "k", value: "v1" };
  assert.is(kv.apply(put).result, "ok");
  assert.is(kv.apply(decodeCommand(encodeCommand(put))).duplicate, true);
  const cas = { client: 2, seq: 1, op: "cas" as const, key: "k", expected: "v1", value: "v2" };
  assert.equal(decodeCommand(encodeCommand(cas)), cas);
  assert.is(kv.apply(cas).result, "ok");
  assert.is(kv.apply({ ...cas, seq: 2, expected: null }).result, "failed");
  const restored = KvStateMachine.restore(kv.serialize());
  assert.is(restored.get("k"), "v2");
  assert.is(restored.apply(cas).duplicate, true, "the session table is part of the snapshot");
  assert.is(restored.fingerprint(), kv.fingerprint());
});

test.run();
