// Property test on real files: random appends (overwriting suffixes like Raft does), hard states, snapshots,
// segment purges and reopens replay exactly what a simple in-memory model of the log holds.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Entry, HardState } from "../../../src/store/raft/types.js";
import { Wal } from "../../../src/store/wal/wal.js";

type Op =
  | { kind: "append"; back: number; count: number; withHardState: boolean }
  | { kind: "snapshot"; back: number }
  | { kind: "release" }
  | { kind: "reopen" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      back: fc.nat(4),
      count: fc.integer({ min: 1, max: 6 }),
      withHardState: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("snapshot" as const), back: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reopen" as const) }) },
);

const BASE_OPTIONS = { segmentBytes: 600, keepTailEntries: 3 };

async function check(ops: Op[], inlineSyncMaxBytes: number): Promise<void> {
  const OPTIONS = { ...BASE_OPTIONS, inlineSyncMaxBytes };
  const dir = await mkdtemp(join(tmpdir(), "vigie-wal-model-"));
  try {
    let { wal } = await Wal.open(dir, OPTIONS);
    let log: Entry[] = []; // model: entries after the snapshot
    let snapshotIndex = 0;
    let hardState: HardState = { term: 0, vote: 0, commit: 0 };
    let term = 1;
    let serial = 0;
    const lastIndex = () => log[log.length - 1]?.index ?? snapshotIndex;
    for (const op of ops) {
      if (op.kind === "append") {
        term++;
        const first = Math.max(snapshotIndex + 1, lastIndex() + 1 - op.back);
        const batch: Entry[] = Array.from({ length: op.count }, (_, i) => ({
          index: first + i,
          term,
          type: "normal" as const,
          data: Buffer.from(`e${++serial}`),
        }));
        log = [...log.filter((e) => e.index < first), ...batch];
        const state = op.withHardState ? { term, vote: serial % 3, commit: snapshotIndex } : null;
        if (state !== null) hardState = state;
        await wal.append(batch, state);
      } else if (op.kind === "snapshot") {
        // back 5 = a snapshot received from a leader, beyond our log (which it then replaces).
        const received = op.back === 5;
        const index = received ? lastIndex() + 3 : Math.max(snapshotIndex, lastIndex() - op.back);
        if (index === snapshotIndex || index === 0) continue;
        const entryTerm = received ? ++term : log.find((e) => e.index === index)!.term;
        await wal.saveSnapshot({
          metadata: { index, term: entryTerm, confState: { voters: [1], learners: [] } },
          data: Buffer.from(`snap-${index}`),
        });
        snapshotIndex = index;
        log = log.filter((e) => e.index > index);
      } else if (op.kind === "release") {
        await wal.releaseTo(snapshotIndex);
      } else {
        await wal.close();
        const replay = await Wal.open(dir, OPTIONS);
        wal = replay.wal;
        assert.equal(replay.entries.map(show), log.map(show));
        assert.equal(replay.hardState, hardState);
        assert.is(replay.snapshot?.metadata.index ?? 0, snapshotIndex);
      }
    }
    await wal.close();
    const final = await Wal.open(dir, OPTIONS);
    await final.wal.close();
    assert.equal(final.entries.map(show), log.map(show));
    assert.equal(final.hardState, hardState);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function show(e: Entry): string {
  return `${e.index}/${e.term}/${Buffer.from(e.data).toString()}`;
}

// 0: every flush on the thread pool; 150: small batches inline, larger ones (and rotations) on the thread pool.
for (const inlineSyncMaxBytes of [0, 150]) {
  test(`random appends, overwrites, snapshots, purges and reopens replay like the model (inline up to ${inlineSyncMaxBytes} bytes)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 40, size: "max" }), (ops) => check(ops, inlineSyncMaxBytes)),
      { numRuns: 100 },
    );
  });
}

test.run();
