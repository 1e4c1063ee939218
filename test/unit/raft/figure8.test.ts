// Raft paper, Figure 8: a leader must not commit an entry of an earlier term by counting replicas, or a later
// leader may overwrite an entry that was reported committed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Cluster, config, storageWith, text } from "./harness.js";

const VOTERS = [1, 2, 3, 4, 5];

/** Figure 8 (b)→(c): S1 and S2 hold (2, term 2); S5 holds (2, term 3) from its term-3 leadership. */
function figure8Cluster(): Cluster {
  const c = new Cluster([]);
  const cfg = (id: number) => config(id, VOTERS, { preVote: false, checkQuorum: false, maxSizePerMsgBytes: 1 });
  c.add(1, cfg(1), storageWith([1, 2], 3, 0, 1));
  c.add(2, cfg(2), storageWith([1, 2], 3, 0, 1));
  c.add(3, cfg(3), storageWith([1], 3, 0, 1));
  c.add(4, cfg(4), storageWith([1], 3, 0, 1));
  c.add(5, cfg(5), storageWith([1, 3], 3, 5, 1));
  return c;
}

/**
 * S1 wins term 4 (S2, S3, S4 vote); S2 and S3 receive its appends but never its own term-4 entry, so S1 learns
 * that S1, S2 and S3 — a majority — hold (2, term 2).
 */
function electS1ReplicatingOnlyTerm2Entry(c: Cluster): void {
  c.isolated.add(5);
  c.dropIf = (m) => m.from === 1 && m.type === "app" && m.to !== 3 && m.to !== 2;
  c.rewrite = (m) => (m.from === 1 && m.type === "app" ? { ...m, entries: m.entries.filter((e) => e.term !== 4) } : m);
  c.elect(1);
  assert.is(c.raft(1).term, 4);
  c.deliver();
  assert.is(c.raft(3).log.term(2), 2, "S3 received the term-2 entry");
  assert.is(c.raft(3).log.lastIndex(), 2, "S3 did not receive the term-4 entry");
  assert.is(c.raft(2).log.lastIndex(), 2, "neither did S2");
  const progress = c.raft(1).status().progress;
  assert.is(progress.get(2)?.match, 2, "S1 knows S2 holds index 2");
  assert.is(progress.get(3)?.match, 2, "S1 knows S3 holds index 2");
}

test("a term-2 entry on a majority is not committed by the term-4 leader, and S5 may overwrite it", () => {
  const c = figure8Cluster();
  electS1ReplicatingOnlyTerm2Entry(c);
  // Index 2 is on S1, S2 and S3 (a majority), but its term is 2 != 4: counting must not commit it.
  assert.is(c.raft(1).log.committed, 1);
  // S1 crashes; S5 (last term 3) wins term 5 with S2, S3, S4 and overwrites index 2 everywhere it reaches.
  c.isolated = new Set([1]);
  c.dropIf = () => false;
  c.rewrite = (m) => m;
  c.elect(5);
  c.tickAll(3);
  for (const id of [2, 3, 4, 5]) {
    assert.is(c.raft(id).log.term(2), 3, `S${id} has S5's entry at index 2`);
    assert.ok(c.raft(id).log.committed >= 3);
  }
  // S1 returns and its uncommitted (2, term 2) is replaced too; no node ever applied it.
  c.isolated.clear();
  c.tickAll(5);
  assert.is(c.raft(1).log.term(2), 3);
  for (const id of VOTERS) {
    const applied = c.get(id).applied.map((e) => text(e.data));
    assert.not.ok(applied.includes("t2i2"), `S${id} never applies the overwritten entry`);
    assert.ok(applied.includes("t3i2"), `S${id} applies S5's entry`);
  }
});

test("once the term-4 entry is on a majority, index 2 is committed and S5 can no longer win", () => {
  const c = figure8Cluster();
  electS1ReplicatingOnlyTerm2Entry(c);
  // Now S3 also gets the term-4 entry: S1 and S3 have it, S2 too once reached: with S2 a majority of 3 of 5.
  c.rewrite = (m) => m;
  c.dropIf = (m) => m.from === 1 && m.to !== 3 && m.to !== 2;
  c.tickAll(2);
  assert.is(c.raft(3).log.lastIndex(), 3);
  assert.is(c.raft(1).log.committed, 3, "the term-4 entry commits, and index 2 with it");
  // S1 crashes; S5's log (last term 3) is behind S2's and S3's (last term 4): it cannot win a majority.
  c.isolated = new Set([1]);
  c.dropIf = () => false;
  for (let i = 0; i < 100; i++) {
    c.tick(5);
    c.deliver();
  }
  assert.is.not(c.raft(5).role, "leader");
  // Whoever leads next keeps (2, term 2), and everyone applies it.
  c.tickAll(60);
  for (const id of [2, 3, 4, 5]) {
    assert.is(c.raft(id).log.term(2), 2);
    assert.ok(
      c
        .get(id)
        .applied.map((e) => text(e.data))
        .includes("t2i2"),
      `S${id} applies (2, term 2)`,
    );
  }
});

test.run();
