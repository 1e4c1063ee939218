// ReadIndex (linearizable reads without a lease) and leadership transfer (TimeoutNow).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ProposalDroppedError } from "../../../src/store/raft/index.js";
import { Cluster } from "./harness.js";

const dropped = (reason: string) => (e: unknown) => e instanceof ProposalDroppedError && e.reason === reason;

test("ReadIndex on the leader is served after a quorum confirms leadership, at the commit index", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "a");
  c.raft(1).readIndex("r1");
  assert.equal(c.get(1).readStates, [], "not before the heartbeat round");
  c.deliver();
  assert.equal(c.get(1).readStates, [{ index: c.raft(1).log.committed, context: "r1" }]);
});

test("ReadIndex on a follower is forwarded and answered with the leader's commit index", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "a");
  c.raft(3).readIndex("f1");
  c.deliver();
  assert.equal(c.get(3).readStates, [{ index: c.raft(1).log.committed, context: "f1" }]);
  assert.throws(() => new Cluster([1, 2, 3]).raft(2).readIndex("x"), dropped("noLeader"));
});

test("a leader cut off from the majority serves no reads", () => {
  const c = new Cluster([1, 2, 3], { checkQuorum: false });
  c.elect(1);
  c.isolated.add(1);
  c.raft(1).readIndex("stale?");
  c.tick(1, 5);
  c.deliver();
  assert.equal(c.get(1).readStates, []);
});

test("a new leader serves reads only after committing an entry of its term", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "a");
  // 2 wins, but its no-op cannot reach anyone yet: its commit index may be stale.
  c.isolated.add(1);
  c.dropIf = (m) => m.from === 2 && m.type === "app";
  c.tick(3, 10); // its leader lease (check-quorum) expires, so it grants votes
  c.elect(2);
  c.raft(2).readIndex("early");
  c.tick(2, 2);
  c.deliver();
  assert.equal(c.get(2).readStates, []);
  c.dropIf = () => false;
  c.tickAll(2);
  const states = c.get(2).readStates;
  assert.is(states.length, 1);
  assert.ok(states[0]!.index >= 3, "the read index covers the new term's no-op");
});

test("leadership transfer: the transferee wins at once, proposals are refused meanwhile", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "a");
  const term = c.raft(1).term;
  c.dropIf = (m) => m.type === "timeoutNow";
  c.raft(1).transferLeadership(2);
  c.deliver();
  assert.throws(() => c.raft(1).propose(new Uint8Array([1])), dropped("transferInProgress"));
  c.dropIf = () => false;
  c.raft(1).transferLeadership(3);
  c.deliver();
  assert.is(c.raft(3).role, "leader");
  assert.is(c.raft(3).term, term + 1);
  assert.is(c.raft(1).leader, 3);
  assert.is(c.raft(1).counters.transfersStarted, 2);
});

test("leadership transfer to a lagging follower first catches it up", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.isolated.add(3);
  for (let i = 0; i < 5; i++) c.propose(1, `v${i}`);
  c.isolated.clear();
  c.raft(2).transferLeadership(3); // asked on a follower: forwarded to the leader
  c.deliver();
  assert.is(c.raft(3).role, "leader");
  c.tickAll(2);
  assert.equal(c.appliedData(3), ["v0", "v1", "v2", "v3", "v4"]);
});

test("an unfinished transfer is abandoned after an election timeout", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.isolated.add(3);
  c.raft(1).transferLeadership(3);
  c.deliver();
  assert.is(c.raft(1).leadTransferee, 3);
  c.tickAll(12);
  assert.is(c.raft(1).leadTransferee, 0);
  c.propose(1, "ok");
  assert.equal(c.appliedData(1), ["ok"]);
});

test.run();
