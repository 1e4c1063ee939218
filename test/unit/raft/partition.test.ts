// Partitions: an old leader cut off from the majority, pre-vote keeping a rejoining node from disrupting the
// cluster, and check-quorum making an isolated leader step down.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ProposalDroppedError } from "../../../src/store/raft/index.js";
import { Cluster, text } from "./harness.js";

test("a partitioned old leader's uncommitted entry is discarded when it rejoins", () => {
  const c = new Cluster([1, 2, 3], { checkQuorum: false });
  c.elect(1);
  c.propose(1, "a");
  c.isolated.add(1);
  c.raft(1).propose(new TextEncoder().encode("lost"));
  c.deliver();
  c.elect(2);
  assert.ok(c.raft(2).term > c.raft(1).term);
  c.propose(2, "b");
  assert.is(c.raft(1).role, "leader", "the old leader does not know yet");
  c.isolated.clear();
  c.tickAll(5);
  assert.is(c.raft(1).role, "follower");
  assert.is(c.raft(1).leader, 2);
  for (const id of [1, 2, 3]) assert.equal(c.appliedData(id), ["a", "b"]);
  assert.not.ok(c.get(1).applied.some((e) => text(e.data) === "lost"));
});

test("check-quorum: an isolated leader steps down after an election timeout", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.isolated.add(1);
  c.tick(1, 10);
  assert.is(c.raft(1).role, "leader", "one election timeout with activity from the previous round");
  c.tick(1, 10);
  assert.is(c.raft(1).role, "follower");
  assert.throws(
    () => c.raft(1).propose(new Uint8Array([1])),
    (e: unknown) => e instanceof ProposalDroppedError && e.reason === "noLeader",
  );
});

test("pre-vote: a node returning from a partition does not bump the term or depose the leader", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  const term = c.raft(1).term;
  c.isolated.add(3);
  for (let i = 0; i < 100; i++) c.tick(3);
  assert.is(c.raft(3).term, term, "pre-candidate never bumps its term");
  assert.ok(c.raft(3).counters.preVotesStarted > 0);
  c.isolated.clear();
  for (let i = 0; i < 40; i++) {
    c.tick(3);
    c.tick(1);
    c.tick(2);
    c.deliver();
  }
  assert.is(c.raft(1).role, "leader");
  assert.is(c.raft(1).term, term);
  assert.is(c.raft(3).leader, 1);
});

test("without pre-vote, the same returning node disrupts the leader (the problem pre-vote solves)", () => {
  const c = new Cluster([1, 2, 3], { preVote: false, checkQuorum: false });
  c.elect(1);
  const term = c.raft(1).term;
  c.isolated.add(3);
  for (let i = 0; i < 100; i++) c.tick(3);
  assert.ok(c.raft(3).term > term + 2);
  c.isolated.clear();
  c.tickAll(1);
  assert.ok(c.raft(1).term > term, "the leader was forced into a higher term");
});

test("pre-vote rejections are counted when the candidate's log is behind", () => {
  const c = new Cluster([1, 2, 3], { checkQuorum: false });
  c.elect(1);
  c.isolated.add(3);
  c.propose(1, "x");
  // Node 1 goes away; 3 (behind) pre-votes and is rejected by 2 (ahead), then 2 wins.
  c.isolated = new Set([1]);
  for (let i = 0; i < 60 && c.raft(2).role !== "leader"; i++) {
    c.tick(3);
    c.deliver();
    if (i > 30) c.tick(2);
    c.deliver();
  }
  assert.ok(c.raft(3).counters.preVoteRejections > 0);
  assert.is(c.raft(2).role, "leader");
});

test.run();
