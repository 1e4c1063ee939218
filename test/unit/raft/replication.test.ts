// Replication details: flow control limits, fast backtracking, dropped proposals, restart from storage, codec.
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  decodeConfChange,
  encodeConfChange,
  type Message,
  messageFromJson,
  messageToJson,
  ProposalDroppedError,
  RaftDecodeError,
  RaftNode,
} from "../../../src/store/raft/index.js";
import { bytes, Cluster, config, storageWith } from "./harness.js";

const isDecodeError = (e: unknown) => e instanceof RaftDecodeError;
const dropped = (reason: string) => (e: unknown) => e instanceof ProposalDroppedError && e.reason === reason;

test("flow control: at most maxInflightMsgs appends in flight, each within maxSizePerMsgBytes", () => {
  const c = new Cluster([1, 2, 3], { maxInflightMsgs: 3, maxSizePerMsgBytes: 100 });
  c.elect(1);
  c.tickAll(1);
  c.isolated.add(2);
  c.isolated.add(3);
  for (let i = 0; i < 20; i++) c.raft(1).propose(new Uint8Array(60));
  const appsTo2 = c.raft(1).msgs.filter((m) => m.type === "app" && m.to === 2);
  assert.is(appsTo2.length, 3, "the window is full after 3 messages");
  for (const m of appsTo2) assert.is(m.entries.length, 1, "60+16 bytes per entry: one per 100-byte message");
  assert.is(c.raft(1).status().progress.get(2)?.inflightMsgs, 3);
  c.isolated.clear();
  c.tickAll(10);
  assert.is(c.raft(2).log.lastIndex(), c.raft(1).log.lastIndex());
});

test("fast backtracking skips a whole conflicting term per round trip", () => {
  const c = new Cluster([]);
  const cfg = (id: number) => config(id, [1, 2, 3], { preVote: false, checkQuorum: false });
  // Node 3 holds 50 stale entries of term 2 after index 1; the leader's log has term 3 there.
  c.add(1, cfg(1), storageWith([1, ...Array(5).fill(3)], 3, 0, 1));
  c.add(2, cfg(2), storageWith([1, ...Array(5).fill(3)], 3, 0, 1));
  c.add(3, cfg(3), storageWith([1, ...Array(50).fill(2)], 3, 0, 1));
  c.elect(1);
  let rejects = 0;
  c.dropIf = (m: Message) => {
    if (m.type === "appResp" && m.reject) rejects++;
    return false;
  };
  c.tickAll(5);
  assert.ok(rejects <= 3, `converged with ${rejects} rejections`);
  assert.is(c.raft(3).log.lastIndex(), c.raft(1).log.lastIndex());
  assert.is(c.raft(3).log.term(2), 3);
});

test("proposals are dropped with a typed error: no leader, uncommitted tail over its limit", () => {
  const c = new Cluster([1, 2, 3], { maxUncommittedEntriesBytes: 100 });
  assert.throws(() => c.raft(1).propose(bytes("x")), dropped("noLeader"));
  c.elect(1);
  c.isolated.add(2);
  c.isolated.add(3);
  c.raft(1).propose(new Uint8Array(80));
  assert.throws(() => c.raft(1).propose(new Uint8Array(80)), dropped("uncommittedLimit"));
  c.isolated.clear();
  c.tickAll(3);
  c.raft(1).propose(new Uint8Array(80)); // committed and applied: room again
  const error = (() => {
    try {
      c.raft(1).propose(new Uint8Array(80));
    } catch (e) {
      return e as ProposalDroppedError;
    }
  })();
  assert.is(error?.code, "VIGIE_ERR_PROPOSAL_DROPPED");
});

test("a follower forwards proposals to the leader", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.propose(3, "via3");
  c.tickAll(2);
  assert.equal(c.appliedData(1), ["via3"]);
});

test("restart: term, vote, log and membership come back from storage; applied entries are not re-delivered", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.propose(1, "a");
  c.propose(1, "b");
  c.tickAll(2);
  const before = c.raft(2);
  const storage = c.get(2).storage;
  const restarted = new RaftNode(config(2, [1, 2, 3], { applied: before.log.applied }), storage);
  assert.is(restarted.term, before.term);
  assert.is(restarted.vote, before.vote);
  assert.is(restarted.log.lastIndex(), before.log.lastIndex());
  assert.equal(restarted.status().voters, [1, 2, 3]);
  assert.is(restarted.hasReady(), false, "everything was applied and persisted before the restart");
  const fresh = new RaftNode(config(2, [1, 2, 3]), storage);
  const replay = fresh.ready().committedEntries;
  assert.is(replay.length, before.log.committed, "with applied=0 every committed entry is handed out again");
});

test("after a commit, followers in replicate get a commit notice: applied, never answered", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tickAll(2);
  const sent: Message[] = [];
  c.dropIf = (m) => {
    sent.push(m);
    return false;
  };
  c.propose(1, "x");
  const notices = sent.filter((m) => m.type === "app" && m.commitNotice);
  assert.equal(
    notices.map((m) => [m.to, m.entries.length]),
    [
      [2, 0],
      [3, 0],
    ],
  );
  // Without the notices nothing tells the followers about the commit before the next heartbeat.
  assert.equal(c.appliedData(2), ["x"]);
  assert.equal(c.appliedData(3), ["x"]);
  // Each follower answered the append carrying the entry, and nothing else.
  for (const follower of [2, 3]) {
    const answers = sent.filter((m) => m.type === "appResp" && m.from === follower);
    assert.equal(
      answers.map((m) => m.index),
      [c.raft(1).log.lastIndex()],
      `answers of ${follower}`,
    );
  }
});

test("a commit notice the follower cannot accept is answered, and the leader repairs the follower's log", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tickAll(2);
  // Node 3 loses the append carrying the entry; the commit notice after it asks for an index it does not have.
  let lost = 0;
  const rejects: Message[] = [];
  c.dropIf = (m) => {
    if (m.type === "appResp" && m.from === 3 && m.reject) rejects.push(m);
    if (m.type === "app" && m.to === 3 && m.entries.length > 0 && lost === 0) {
      lost++;
      return true;
    }
    return false;
  };
  c.propose(1, "y");
  assert.is(rejects.length, 1, "the notice was refused, and the refusal answered");
  assert.equal(c.appliedData(3), ["y"], "the leader resent the entry, then the commit");
});

test("an append sent to find where a peer is (after a heartbeat answer) is answered, not a commit notice", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tickAll(2);
  // Node 2's answer to the entry is lost: the leader commits with node 3, and its view of node 2 stays behind.
  c.loseFirst((m) => m.type === "appResp" && m.from === 2);
  c.propose(1, "z");
  const last = c.raft(1).log.lastIndex();
  assert.is(c.raft(1).status().progress.get(2)?.match, last - 1, "the leader does not know node 2 has the entry");
  c.dropIf = () => false;
  // The next heartbeat's answer makes the leader send an empty append; node 2's answer to it repairs the view.
  c.tickAll(1);
  assert.is(c.raft(1).status().progress.get(2)?.match, last);
});

test("a follower answers an append carrying entries even if it is flagged as a commit notice", () => {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  c.tickAll(2);
  const leader = c.raft(1);
  const last = leader.log.lastIndex();
  const flagged: Message = {
    type: "app",
    from: 1,
    to: 2,
    term: leader.term,
    logTerm: leader.log.term(last) ?? 0,
    index: last,
    entries: [{ term: leader.term, index: last + 1, type: "normal", data: bytes("w") }],
    commit: leader.log.committed,
    reject: false,
    rejectHint: 0,
    context: "",
    snapshot: null,
    commitNotice: true,
  };
  c.queue = [];
  c.raft(2).step(flagged);
  c.drain(2);
  assert.equal(
    c.queue.filter((m) => m.type === "appResp").map((m) => [m.from, m.index, m.reject]),
    [[2, last + 1, false]],
  );
});

test("codec: messages and conf changes survive JSON, bad input is a RaftDecodeError", () => {
  const cc = { type: "addLearner" as const, nodeId: 9, context: bytes("http://127.0.0.1:2380") };
  assert.equal(decodeConfChange(encodeConfChange(cc)), cc);
  const m: Message = {
    type: "app",
    from: 1,
    to: 2,
    term: 3,
    logTerm: 2,
    index: 7,
    entries: [{ term: 3, index: 8, type: "normal", data: bytes("put") }],
    commit: 6,
    reject: false,
    rejectHint: 0,
    context: "",
    snapshot: { metadata: { index: 5, term: 2, confState: { voters: [1, 2], learners: [3] } }, data: bytes("s") },
    commitNotice: true,
  };
  assert.equal(messageFromJson(JSON.parse(JSON.stringify(messageToJson(m)))), m);
  assert.throws(() => messageFromJson({ ...(messageToJson(m) as object), from: -1 }), isDecodeError);
  assert.throws(() => decodeConfChange(bytes("{")), isDecodeError);
});

test.run();
