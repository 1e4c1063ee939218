// Membership changes (one at a time), learners catching up by snapshot, and a removed leader stepping down.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type ConfChange, MemoryStorage, type Message, ProposalDroppedError } from "../../../src/store/raft/index.js";
import { Cluster, config } from "./harness.js";

const cc = (type: ConfChange["type"], nodeId: number): ConfChange => ({ type, nodeId, context: new Uint8Array(0) });
const dropped = (reason: string) => (e: unknown) => e instanceof ProposalDroppedError && e.reason === reason;

test("a new learner catches up by InstallSnapshot, then by appends, and never votes", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  for (let i = 0; i < 10; i++) c.propose(1, `v${i}`);
  const snapIndex = c.snapshotAndCompact(1);
  assert.ok(snapIndex >= 11);
  c.raft(1).proposeConfChange(cc("addLearner", 4));
  c.deliver();
  assert.equal(c.get(1).confState.learners, [4]);
  // The joining node starts empty and without a membership: it learns it from the snapshot.
  c.add(4, config(4, []), new MemoryStorage());
  c.tickAll(3);
  assert.ok(c.raft(1).counters.snapshotsSent >= 1);
  assert.ok(c.get(4).storage.snapshot().metadata.index >= snapIndex);
  c.propose(1, "after");
  c.tickAll(2);
  assert.equal(c.appliedData(4), c.appliedData(1));
  assert.equal(c.appliedData(4).at(-1), "after");
  assert.equal(c.raft(4).status().learners, [4]);
  // Learners never campaign.
  c.isolated.add(1);
  for (let i = 0; i < 50; i++) c.tick(4);
  assert.is(c.raft(4).role, "follower");
});

test("add learner, promote it, then remove the leader: it steps down and the rest elect a leader", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.raft(1).proposeConfChange(cc("addLearner", 4));
  assert.throws(() => c.raft(1).proposeConfChange(cc("addLearner", 5)), dropped("confChangePending"));
  c.add(4, config(4, []), new MemoryStorage());
  c.tickAll(3);
  c.raft(1).proposeConfChange(cc("promoteLearner", 4));
  c.tickAll(3);
  assert.equal(c.raft(2).status().voters, [1, 2, 3, 4]);
  assert.equal(c.raft(4).status().voters, [1, 2, 3, 4]);
  c.propose(1, "with4");
  c.raft(1).proposeConfChange(cc("removeNode", 1));
  c.tickAll(2);
  assert.is.not(c.raft(1).role, "leader", "a removed leader steps down");
  assert.equal(c.raft(2).status().voters, [2, 3, 4]);
  c.isolated.add(1);
  c.tickAll(40);
  const leaders = c.leaders();
  assert.is(leaders.length, 1);
  assert.ok([2, 3, 4].includes(leaders[0]!));
  c.propose(leaders[0]!, "without1");
  for (const id of [2, 3, 4]) assert.equal(c.appliedData(id), ["with4", "without1"]);
});

test("2 → 1: the removed leader hands leadership to the survivor, which then leads alone", () => {
  const c = new Cluster([1, 2]);
  c.elect(1);
  c.propose(1, "before");
  // The commit index that covers the removal must not reach node 2 through heartbeats or empty appends.
  const commitCarrier = (m: Message) =>
    m.from === 1 && m.to === 2 && (m.type === "heartbeat" || (m.type === "app" && m.entries.length === 0));
  c.dropIf = commitCarrier;
  c.raft(1).proposeConfChange(cc("removeNode", 1));
  c.deliver();
  assert.is(c.raft(1).status().voters.includes(1), false, "node 1 applied its own removal");
  assert.throws(() => c.raft(1).propose(new Uint8Array([1])), dropped("notMember"));
  // The hand-over's TimeoutNow carried the commit index: node 2 applied the removal and won alone.
  assert.is(c.raft(2).role, "leader");
  assert.equal(c.raft(2).status().voters, [2]);
  // Node 2 leads alone and sends nothing to node 1; node 1's next heartbeat is answered with the new term.
  c.dropIf = () => false;
  c.tickAll(2);
  assert.is(c.raft(1).role, "follower", "the removed leader stepped down on hearing of the new term");
  c.isolated.add(1); // the removed process may now exit
  c.propose(2, "after");
  assert.equal(c.appliedData(2), ["before", "after"]);
  assert.equal(c.raft(2).status().voters, [2]);
});

test("invalid conf changes are refused with a typed error", () => {
  const c = new Cluster([1]);
  c.elect(1);
  assert.throws(() => c.raft(1).proposeConfChange(cc("removeNode", 1)), dropped("invalidConfChange"));
  assert.throws(() => c.raft(1).proposeConfChange(cc("promoteLearner", 7)), dropped("invalidConfChange"));
  assert.throws(() => c.raft(1).proposeConfChange(cc("addVoter", 1)), dropped("invalidConfChange"));
});

test("adding a voter directly, in a single-node cluster, keeps committing", () => {
  const c = new Cluster([1]);
  c.elect(1);
  c.propose(1, "solo");
  c.raft(1).proposeConfChange(cc("addVoter", 2));
  c.add(2, config(2, []), new MemoryStorage());
  c.tickAll(3);
  c.propose(1, "pair");
  assert.equal(c.appliedData(2), ["solo", "pair"]);
  assert.equal(c.raft(2).status().voters, [1, 2]);
});

test("updateNode changes no configuration, takes the one pending-change slot, and is refused for a non-member", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  const before = c.raft(2).status();
  c.raft(1).proposeConfChange(cc("updateNode", 2));
  assert.throws(() => c.raft(1).proposeConfChange(cc("addLearner", 4)), dropped("confChangePending"));
  c.tickAll(3);
  for (const id of [1, 2, 3]) {
    assert.equal(c.raft(id).status().voters, before.voters);
    assert.equal(c.raft(id).status().learners, before.learners);
  }
  assert.throws(() => c.raft(1).proposeConfChange(cc("updateNode", 9)), dropped("invalidConfChange"));
  // The slot is free again once it applied: a real change goes through.
  c.raft(1).proposeConfChange(cc("addLearner", 4));
  c.tickAll(2);
  assert.equal(c.get(1).confState.learners, [4]);
});

test.run();
