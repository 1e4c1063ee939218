// Commit notices (Message.commitNotice): the empty append a leader sends right after a commit to a follower in
// "replicate" is applied and not answered. These scenarios hold notices back, duplicate them, deliver them after a
// term change, a step-down or a restart, and check that a follower never commits beyond what the leader committed
// and what it holds, that a refused notice is answered, and that nothing the leader needs (flow control, transfer,
// reads, snapshots, learners) waits on an answer that is no longer sent. The last scenario sends every message
// through the peer transport's merging and binary frames.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Message, NodeId } from "../../../src/store/raft/index.js";
import { coalesceAppends } from "../../../src/store/transport/coalesce.js";
import { decodeFrame, encodeFrame } from "../../../src/store/transport/frame.js";
import { Cluster, config } from "./harness.js";

const isNotice = (m: Message): boolean => m.type === "app" && m.commitNotice;

/** A settled three-node cluster led by node 1 (every follower in "replicate"). */
function cluster(overrides: Parameters<typeof config>[2] = {}, learners: NodeId[] = []): Cluster {
  const c = new Cluster([1, 2, 3], overrides, learners);
  c.elect(1);
  c.tickAll(2);
  return c;
}

/** Steps one message into its target and handles the Ready; returns what the target sent in answer. */
function stepOne(c: Cluster, m: Message): Message[] {
  const before = c.queue.length;
  c.raft(m.to).step(m);
  c.drain(m.to);
  return c.queue.slice(before);
}

/** Every committed entry of `id` sits, with the same term, in the log of `reference` (log matching). */
function assertCommittedPrefix(c: Cluster, id: NodeId, reference: NodeId): void {
  const node = c.raft(id);
  const ref = c.raft(reference);
  for (let i = node.log.firstIndex(); i <= node.log.committed; i++) {
    assert.is(node.log.term(i), ref.log.term(i), `node ${id} entry ${i} against node ${reference}`);
  }
}

test("a duplicated notice, and one arriving after the follower moved on, change nothing and are not answered", () => {
  const c = cluster();
  const notices: Message[] = [];
  c.dropIf = (m) => {
    if (isNotice(m) && m.to === 3) notices.push(m);
    return false;
  };
  c.propose(1, "x");
  assert.is(notices.length, 1);
  const first = notices[0]!;
  const commitAfterX = c.raft(3).log.committed;
  assert.is(commitAfterX, first.index, "the notice carried the follower up to the entry it follows");
  // Duplicates of the notice: idempotent, silent.
  for (let k = 0; k < 3; k++) assert.equal(stepOne(c, first), [], "a duplicate is not answered");
  assert.is(c.raft(3).log.committed, commitAfterX);
  c.propose(1, "y");
  const commitAfterY = c.raft(3).log.committed;
  assert.ok(commitAfterY > commitAfterX);
  // The old notice again, now below the follower's commit index: still silent, commit does not move back.
  assert.equal(stepOne(c, first), []);
  assert.is(c.raft(3).log.committed, commitAfterY);
  assert.equal(c.appliedData(3), ["x", "y"]);
  assert.is(c.raft(1).status().progress.get(3)?.match, c.raft(1).log.lastIndex());
});

test("a notice that overtakes the entries it follows is refused and answered; flow control recovers", () => {
  const c = cluster({ maxInflightMsgs: 2 });
  const held: Message[] = [];
  c.dropIf = (m) => {
    if (m.type === "app" && m.to === 3 && m.entries.length > 0 && held.length === 0) {
      held.push(m);
      return true;
    }
    return false;
  };
  const answers: Message[] = [];
  const seen = c.dropIf;
  c.dropIf = (m) => {
    if (m.type === "appResp" && m.from === 3) answers.push(m);
    return seen(m);
  };
  c.propose(1, "x");
  assert.is(held.length, 1, "the append carrying x to node 3 is still on its way");
  assert.ok(
    answers.some((m) => m.reject),
    "node 3 refused the notice that arrived first, and said so",
  );
  // The delayed append finally arrives (a duplicate by now): harmless.
  c.dropIf = () => false;
  stepOne(c, held[0]!);
  c.deliver();
  c.tickAll(2);
  const pr = c.raft(1).status().progress.get(3)!;
  assert.is(pr.state, "replicate");
  assert.is(pr.match, c.raft(1).log.lastIndex());
  assert.is(pr.inflightMsgs, 0, "no slot of the in-flight window is left taken");
  assert.equal(c.appliedData(3), ["x"]);
});

test("a notice from a deposed leader's term is answered with the newer term and commits nothing", () => {
  const c = cluster();
  const held: Message[] = [];
  c.dropIf = (m) => {
    if (m.to === 3 && m.type === "app") {
      held.push(m);
      return true;
    }
    return false;
  };
  c.propose(1, "x");
  const notice = held.find(isNotice);
  assert.ok(notice !== undefined, "node 1 committed x with node 2 and sent node 3 a notice");
  // Node 1 is cut off; node 2 (which has x) wins a new term with node 3.
  c.dropIf = () => false;
  c.isolated.add(1);
  // Node 3 stops hearing from node 1; once its election timeout passes, the one that has x (node 2) wins.
  for (let i = 0; i < 100 && c.raft(2).role !== "leader"; i++) c.tickAll(1);
  assert.is(c.raft(2).role, "leader");
  const term = c.raft(3).term;
  assert.ok(term > notice.term);
  const commitBefore = c.raft(3).log.committed;
  const answers = stepOne(c, notice);
  assert.is(c.raft(3).log.committed, commitBefore, "a stale notice moves no commit index");
  assert.is(answers.length, 1, "the stale leader is told about the newer term");
  assert.is(answers[0]!.term, term);
  // Delivered to node 1, that answer makes it step down.
  c.isolated.delete(1);
  c.raft(1).step(answers[0]!);
  c.drain(1);
  assert.is(c.raft(1).role, "follower");
  assert.is(c.raft(1).term, term);
  c.tickAll(3);
  assert.equal(c.leaders(), [2]);
  for (const id of [1, 3]) assertCommittedPrefix(c, id, 2);
  assert.equal(c.appliedData(3), ["x"]);
});

test("a notice that reaches a follower after its leader stepped down (same term) commits only what was committed", () => {
  const c = cluster();
  const held: Message[] = [];
  c.dropIf = (m) => {
    if (isNotice(m) && m.to === 3) {
      held.push(m);
      return true;
    }
    return false;
  };
  c.propose(1, "x");
  assert.is(held.length, 1);
  const committed = c.raft(1).log.committed;
  assert.ok(c.raft(3).log.committed < committed, "node 3 has x but does not know it is committed");
  // Node 1 loses its quorum and steps down (check-quorum) without a term change.
  c.dropIf = () => false;
  c.isolated.add(1);
  c.tick(1, 20);
  assert.is(c.raft(1).role, "follower");
  assert.is(c.raft(1).term, held[0]!.term);
  assert.is(c.raft(3).term, held[0]!.term, "node 3 has not heard of a newer term");
  assert.equal(stepOne(c, held[0]!), [], "accepted, so not answered");
  assert.is(c.raft(3).log.committed, committed);
  c.isolated.delete(1);
  c.elect(3);
  c.tickAll(3);
  for (const id of [1, 2, 3]) assertCommittedPrefix(c, id, 3);
  for (const id of [1, 2, 3]) assert.equal(c.appliedData(id), ["x"], `node ${id}`);
});

test("a follower that restarted without its unsynced tail refuses the notice, says so, and is repaired", () => {
  const c = cluster();
  const held: Message[] = [];
  c.dropIf = (m) => {
    if (m.to === 3 || m.from === 3) {
      held.push(m);
      return true;
    }
    return false;
  };
  c.propose(1, "x");
  const append = held.find((m) => m.type === "app" && m.entries.length > 0);
  const notice = held.find(isNotice);
  assert.ok(append !== undefined && notice !== undefined);
  // Node 3 receives x into its unstable log, then dies before the write reaches the disk (nothing was answered).
  c.raft(3).step(append);
  assert.is(c.raft(3).log.lastIndex(), append.index + 1);
  const storage = c.get(3).storage;
  assert.is(storage.lastIndex(), append.index, "x never reached node 3's disk");
  c.add(3, config(3, [1, 2, 3], { applied: c.raft(3).log.applied }), storage);
  c.dropIf = () => false;
  const answers = stepOne(c, notice);
  assert.is(answers.length, 1);
  assert.ok(answers[0]!.reject, "the restarted follower lacks the notice's index and says so");
  c.deliver();
  c.tickAll(2);
  assert.equal(c.appliedData(3), ["x"]);
  const pr = c.raft(1).status().progress.get(3)!;
  assert.is(pr.state, "replicate");
  assert.is(pr.match, c.raft(1).log.lastIndex());
});

test("a follower that restarted having lost only its commit index gets it back from the next notice", () => {
  const c = cluster();
  c.propose(1, "x");
  const node3 = c.get(3);
  // The hard state's commit index was written without fsync and lost; the entries were synced.
  const hs = node3.storage.initialState().hardState;
  node3.storage.setHardState({ ...hs, commit: 0 });
  c.add(3, config(3, [1, 2, 3]), node3.storage);
  assert.ok(c.raft(3).log.committed < c.raft(1).log.committed);
  const notices: Message[] = [];
  c.dropIf = (m) => {
    if (isNotice(m) && m.to === 3) notices.push(m);
    return false;
  };
  c.propose(1, "y");
  assert.is(notices.length, 1);
  assert.is(c.raft(3).log.committed, c.raft(1).log.committed);
  assert.equal(c.appliedData(3), ["x", "y"], "the state machine rebuilt from the log, every entry once");
});

test("flow control: answers to entries lost while notices flow; the heartbeat answer unblocks the window", () => {
  const c = cluster({ maxInflightMsgs: 2 });
  let noticesTo2 = 0;
  c.dropIf = (m) => {
    if (isNotice(m) && m.to === 2) noticesTo2++;
    return m.type === "appResp" && m.from === 2 && !m.reject;
  };
  for (const value of ["a", "b", "c", "d", "e"]) c.propose(1, value);
  assert.ok(noticesTo2 >= 1, "node 2 got notices while its window had room");
  const stuck = c.raft(1).status().progress.get(2)!;
  assert.is(stuck.inflightMsgs, 2, "node 2's window is full: the leader heard none of its answers");
  assert.ok(c.raft(2).log.lastIndex() < c.raft(1).log.lastIndex(), "nothing more was sent to node 2");
  assert.is(c.raft(1).role, "leader");
  c.dropIf = () => false;
  c.tickAll(3);
  const pr = c.raft(1).status().progress.get(2)!;
  assert.is(pr.match, c.raft(1).log.lastIndex());
  assert.is(pr.inflightMsgs, 0);
  assert.equal(c.appliedData(2), ["a", "b", "c", "d", "e"]);
});

test("leadership transfer to a follower whose last answer was lost (it only got a notice since) completes", () => {
  const c = cluster();
  c.loseFirst((m) => m.type === "appResp" && m.from === 2);
  c.propose(1, "x");
  const last = c.raft(1).log.lastIndex();
  assert.is(c.raft(1).status().progress.get(2)?.match, last - 1, "the leader does not know node 2 has x");
  assert.is(c.raft(2).log.committed, last, "node 2 applied x from the notice");
  c.raft(1).transferLeadership(2);
  c.deliver();
  c.tickAll(2);
  assert.equal(c.leaders(), [2]);
  assert.is(c.raft(2).counters.electionsStarted, 1);
});

test("ReadIndex right after a put: served from heartbeat answers, on the leader and through a follower", () => {
  const c = cluster();
  c.propose(1, "x");
  const index = c.raft(1).log.committed;
  c.raft(1).readIndex("on-leader");
  c.raft(3).readIndex("via-3");
  c.deliver();
  c.tickAll(1);
  assert.equal(
    c.get(1).readStates.map((r) => [r.context, r.index >= index]),
    [["on-leader", true]],
  );
  assert.equal(
    c.get(3).readStates.map((r) => [r.context, r.index >= index]),
    [["via-3", true]],
  );
  assert.ok(c.raft(3).log.applied >= index, "the follower can serve it: it applied the notice's commit");
});

test("a peer being sent a snapshot gets no notice; it catches up once the snapshot is reported", () => {
  const c = cluster();
  c.isolated.add(3);
  for (const value of ["a", "b", "c"]) c.propose(1, value);
  c.snapshotAndCompact(1);
  c.propose(1, "d");
  c.isolated.delete(3);
  const toThree: Message[] = [];
  c.dropIf = (m) => {
    if (m.to === 3) {
      toThree.push(m);
      return m.type === "snap";
    }
    return false;
  };
  c.tickAll(1);
  const snap = toThree.find((m) => m.type === "snap");
  assert.ok(snap !== undefined, "node 3's entries were compacted away: it is sent the snapshot");
  assert.is(c.raft(1).status().progress.get(3)?.state, "snapshot");
  toThree.length = 0;
  c.propose(1, "e");
  assert.is(toThree.filter((m) => m.type === "app").length, 0, "no append, and no notice, while the snapshot is out");
  c.dropIf = () => false;
  stepOne(c, snap);
  c.raft(1).reportSnapshot(3, true);
  c.deliver();
  c.tickAll(3);
  assert.equal(c.appliedData(3), ["a", "b", "c", "d", "e"]);
  assert.is(c.raft(1).status().progress.get(3)?.match, c.raft(1).log.lastIndex());
});

test("learners get notices too; the leader learns a learner's progress from its answers to entries", () => {
  const c = cluster({}, [4]);
  const sent: Message[] = [];
  c.dropIf = (m) => {
    sent.push(m);
    return false;
  };
  c.propose(1, "x");
  assert.ok(sent.some((m) => isNotice(m) && m.to === 4));
  assert.equal(
    sent.filter((m) => m.type === "appResp" && m.from === 4).map((m) => m.index),
    [c.raft(1).log.lastIndex()],
    "one answer, to the entry",
  );
  assert.equal(c.appliedData(4), ["x"]);
  assert.is(c.raft(1).status().progress.get(4)?.match, c.raft(1).log.lastIndex());
});

test("check-quorum: a leader whose followers answer only entries and heartbeats keeps leading", () => {
  const c = cluster();
  for (let i = 0; i < 40; i++) {
    c.propose(1, `v${i}`);
    c.tickAll(1);
  }
  assert.equal(c.leaders(), [1]);
  assert.is(c.raft(1).counters.leadersElected, 1);
  for (const id of [2, 3]) assert.is(c.appliedData(id).length, 40);
});

/** Delivers messages the way the peer transport does: per sender and peer, merged, framed, decoded, in order. */
function deliverThroughTransport(c: Cluster, seen: Message[]): void {
  for (let round = 0; round < 1000; round++) {
    c.drainAll();
    if (c.queue.length === 0) return;
    const batch = c.queue;
    c.queue = [];
    const links = new Map<string, Message[]>();
    for (const m of batch) {
      const key = `${m.from}->${m.to}`;
      const list = links.get(key) ?? [];
      list.push(m);
      links.set(key, list);
    }
    for (const messages of links.values()) {
      for (const m of decodeFrame(encodeFrame(coalesceAppends(messages)))) {
        seen.push(m);
        c.raft(m.to).step(m);
        c.drain(m.to);
      }
    }
  }
  assert.unreachable("the cluster never went quiet");
}

for (const maxInflightMsgs of [256, 1]) {
  test(`through merging and frames a notice keeps its flag, never carries entries, is not answered (window ${maxInflightMsgs})`, () => {
    // With a window of 1, entries wait for the previous answer and go out from the commit path itself: those
    // appends must stay ordinary (answered) appends.
    const c = cluster({ maxInflightMsgs });
    const seen: Message[] = [];
    for (let i = 0; i < 20; i++) {
      // Several proposals per turn: the leader's batches hold runs of appends (merged) next to notices.
      for (let k = 0; k < 3; k++) c.raft(1).propose(new TextEncoder().encode(`v${i}.${k}`));
      deliverThroughTransport(c, seen);
      if (i % 5 === 4) {
        for (const id of [1, 2, 3]) c.raft(id).tick();
        deliverThroughTransport(c, seen);
      }
    }
    const notices = seen.filter(isNotice);
    assert.ok(notices.length > 0);
    for (const m of notices) assert.is(m.entries.length, 0, "a notice never carries entries");
    const last = c.raft(1).log.lastIndex();
    for (const id of [2, 3]) {
      assert.is(c.appliedData(id).length, 60, `node ${id}`);
      const appends = seen.filter((m) => m.type === "app" && m.to === id && !m.commitNotice);
      const answers = seen.filter((m) => m.type === "appResp" && m.from === id);
      assert.ok(
        answers.every((m) => !m.reject),
        `node ${id} refused nothing`,
      );
      // Every append but a notice was answered, and only those were.
      assert.is(answers.length, appends.length, `node ${id}: one answer per append that is not a notice`);
      assert.is(c.raft(1).status().progress.get(id)?.match, last);
    }
  });
}

test("a follower restarted with its whole log on disk accepts the next notice silently", () => {
  const c = cluster();
  c.propose(1, "x");
  const storage = c.get(3).storage;
  c.add(3, config(3, [1, 2, 3], { applied: c.raft(3).log.applied }), storage);
  const toThree: Message[] = [];
  const answers: Message[] = [];
  c.dropIf = (m) => {
    if (m.to === 3 && m.type === "app") toThree.push(m);
    if (m.type === "appResp" && m.from === 3) answers.push(m);
    return false;
  };
  c.propose(1, "y");
  assert.equal(
    toThree.map((m) => [m.entries.length, m.commitNotice]),
    [
      [1, false],
      [0, true],
    ],
  );
  assert.equal(
    answers.map((m) => [m.index, m.reject]),
    [[c.raft(1).log.lastIndex(), false]],
    "one answer, to the entry",
  );
  assert.equal(c.appliedData(3), ["y"], "x was applied before the restart; y after it");
});

test.run();
