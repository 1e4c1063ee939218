// A leader that removed itself must stay until it handed over, even when it hears from no voter for a while.
// Found by the simulator (seed 3007532, 20,000-seed run of 2026-11-26): voters {3, 5}, leader 3 removes itself and
// the link 3 → 5 fails. Node 5 acknowledges the removal, node 3 commits and applies it, having appended one more
// entry in between; check-quorum then made node 3 step down (node 5 had not been heard from). Nobody could lead:
// node 5 never learned that the removal was committed, so it still needed node 3's vote, and node 3, whose log is
// longer, refused it and could not campaign itself (it is no longer a voter).
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { ConfChange, Message } from "../../../src/store/raft/index.js";
import { bytes, Cluster, config } from "./harness.js";

const removeNode = (nodeId: number): ConfChange => ({ type: "removeNode", nodeId, context: new Uint8Array(0) });

/**
 * Voters {1, 2}, leader 1. The append carrying node 1's removal reaches node 2, and from then on nothing from node 1
 * does; node 2's acknowledgement is held back and handed to node 1, which commits its removal and, before applying
 * it, accepts one more entry ("late") that node 2 never gets.
 */
function removedLeaderCutOff(): Cluster {
  const c = new Cluster([1, 2], { preVote: true, checkQuorum: true });
  c.elect(1);
  c.propose(1, "before");
  c.tickAll(2);
  const acks: Message[] = [];
  let removalSent = false;
  c.dropIf = (m) => {
    if (m.from === 1 && m.to === 2) {
      if (!removalSent && m.type === "app" && m.entries.some((e) => e.type === "confChange")) {
        removalSent = true;
        return false;
      }
      return true;
    }
    if (m.from === 2 && m.type === "appResp" && !m.reject && acks.length === 0) {
      acks.push(m);
      return true;
    }
    return false;
  };
  c.raft(1).proposeConfChange(removeNode(1));
  c.deliver();
  assert.is(acks.length, 1, "node 2 acknowledged the removal");
  c.raft(1).step(acks[0]!);
  c.raft(1).propose(bytes("late"));
  c.drain(1);
  return c;
}

test("a removed leader cut off from the last voter does not step down on check-quorum; it hands over later", () => {
  const c = removedLeaderCutOff();
  assert.equal(c.raft(1).status().voters, [2], "node 1 applied its own removal");
  assert.is(c.raft(2).log.committed < c.raft(1).log.committed, true, "node 2 does not know the removal committed");
  assert.ok(c.raft(1).log.lastIndex() > c.raft(2).log.lastIndex());
  // Several election timeouts without hearing from node 2's side of things.
  for (let i = 0; i < 50; i++) c.tickAll(1);
  c.dropIf = () => false;
  for (let i = 0; i < 200 && c.raft(2).role !== "leader"; i++) c.tickAll(1);
  assert.is(c.raft(2).role, "leader", "node 2 leads");
  assert.equal(c.raft(2).status().voters, [2]);
  c.tickAll(3);
  assert.is(c.raft(1).role, "follower");
  c.propose(2, "after");
  assert.equal(c.appliedData(2), ["before", "late", "after"]);
});

test("a removed leader that restarted refuses its vote but tells the candidate its commit index", () => {
  // Found by the simulator (seed 7000321): the same stall when the removed leader crashes and restarts as a
  // follower before handing over. Its refusal now carries its commit index; the candidate holds that entry,
  // commits and applies the removal, and then needs no other vote.
  const c = removedLeaderCutOff();
  assert.equal(c.raft(1).status().voters, [2]);
  // Node 1 crashes and restarts from its disk: a follower that is not a voter, with the longer log.
  const node1 = c.get(1);
  c.add(1, config(1, [1, 2], { preVote: true, checkQuorum: true, applied: node1.raft.log.applied }), node1.storage);
  assert.equal(c.raft(1).status().voters, [2]);
  assert.is(c.raft(1).role, "follower");
  c.deliver(); // what the old process sent before the crash is lost on the failed link
  c.dropIf = () => false;
  for (let i = 0; i < 200 && c.raft(2).role !== "leader"; i++) c.tickAll(1);
  assert.is(c.raft(2).role, "leader", "node 2 leads");
  assert.equal(c.raft(2).status().voters, [2]);
  c.propose(2, "after");
  assert.equal(c.appliedData(2), ["before", "after"], "the removed node's uncommitted entry is gone");
});

test.run();
