// The leader's choices of a member, with the real member table and Membership around a small scripted stand-in for
// the core:
// - Automatic promotion, with its commit slowed down (one pending conf change at a time, applied 300 ms after it is
//   proposed): the promotion timer fires again while the first promotion is still uncommitted and the learner it
//   chose has just gone quiet. The leader must not pick a second learner (that made one voter more than --voters
//   once both committed), and must never promote a learner that is not caught up.
// - The voter a leader that shuts down hands leadership to: one that is up, even just after a check-quorum round
//   cleared the core's flags; the longest log first.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../../src/log.js";
import { MemberTable } from "../../../src/store/cluster/members.js";
import { Membership } from "../../../src/store/node/membership.js";
import { ProposalDroppedError } from "../../../src/store/raft/errors.js";
import type { RaftNode } from "../../../src/store/raft/raft-node.js";
import type { ConfChange } from "../../../src/store/raft/types.js";
import type { PeerTransport } from "../../../src/store/transport/transport.js";

const LEADER = 1;
const COMMIT_DELAY_MS = 300;
const LAST_INDEX = 100;

function setUp(options: { voters: number[]; learners: number[]; wantedVoters: number }) {
  const table = MemberTable.fromList(
    [...options.voters, ...options.learners].map((id) => ({
      ID: id,
      name: `m${id}`,
      peerURLs: [`http://127.0.0.1:${9000 + id}`],
      clientURLs: [],
      isLearner: options.learners.includes(id),
    })),
  );
  const active = new Set([...options.voters, ...options.learners]);
  const match = new Map([...options.voters, ...options.learners].map((id) => [id, LAST_INDEX]));
  const proposed: ConfChange[] = [];
  const transfers: number[] = [];
  let leader = LEADER;
  let pending: ConfChange | null = null;
  let membership: Membership | undefined;
  const core = {
    role: "leader",
    status() {
      const learners = table
        .list()
        .filter((m) => m.isLearner)
        .map((m) => m.ID);
      const voters = table
        .list()
        .filter((m) => !m.isLearner)
        .map((m) => m.ID);
      const progress = new Map(
        [...voters, ...learners].map((id) => [id, { match: match.get(id) ?? 0, recentActive: active.has(id) }]),
      );
      return { voters, learners, lastIndex: LAST_INDEX, progress };
    },
    proposeConfChange(cc: ConfChange) {
      if (pending !== null) throw new ProposalDroppedError("confChangePending", "a conf change is pending");
      pending = cc;
      proposed.push(cc);
      setTimeout(() => {
        table.applyConfChange(cc);
        pending = null;
        membership?.onConfChange(cc);
      }, COMMIT_DELAY_MS);
    },
    transferLeadership(to: number) {
      transfers.push(to);
      setTimeout(() => {
        leader = to; // the transferee's first append reaches the old leader
      }, 10);
    },
  };
  const transport = { handle() {}, setPeer() {}, removePeer() {} } as unknown as PeerTransport;
  membership = new Membership({
    clusterId: 7,
    memberId: LEADER,
    name: "m1",
    clientUrls: [],
    raft: core as unknown as RaftNode,
    table,
    transport,
    logger: silentLogger(),
    requestTimeoutMs: 3000,
    wantedVoters: options.wantedVoters,
    run: async (op) => op(core as unknown as RaftNode),
    proposeAttributes: async () => undefined,
    isLeader: () => true,
    leader: () => leader,
    active: () => true,
    onRemoved: () => {},
  });
  return { membership, table, active, match, proposed, transfers };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const voterCount = (table: MemberTable) => table.list().filter((m) => !m.isLearner).length;

test("a promotion timer firing while the last promotion is uncommitted does not promote a second learner", async () => {
  const { membership, table, active, proposed } = setUp({ voters: [1, 2, 3], learners: [4, 5], wantedVoters: 4 });
  membership.promoteCaughtUpLearner();
  await sleep(20);
  assert.equal(
    proposed.map((cc) => cc.nodeId),
    [4],
  );
  // Learner 4 goes quiet right after being chosen; 5 is caught up and active.
  active.delete(4);
  for (let round = 0; round < 6; round++) {
    membership.promoteCaughtUpLearner();
    await sleep(100);
  }
  await sleep(COMMIT_DELAY_MS * 2);
  assert.is(voterCount(table), 4, `voters: ${JSON.stringify(table.list())}`);
  assert.equal(
    proposed.map((cc) => cc.nodeId),
    [4],
  );
});

test("only caught-up, active learners are promoted, one at a time, up to the wanted count", async () => {
  const { membership, table, active, match, proposed } = setUp({
    voters: [1, 2, 3],
    learners: [4, 5, 6, 7],
    wantedVoters: 5,
  });
  match.set(4, 50); // behind: under 90% of the leader's log
  active.delete(5); // silent
  for (let round = 0; round < 12; round++) {
    membership.promoteCaughtUpLearner();
    await sleep(100);
  }
  await sleep(COMMIT_DELAY_MS * 2);
  assert.equal(
    proposed.map((cc) => cc.nodeId),
    [6, 7],
  );
  assert.is(voterCount(table), 5);
  // Learner 4 catches up and 5 comes back: the cluster already has what it wants.
  match.set(4, LAST_INDEX);
  active.add(5);
  for (let round = 0; round < 4; round++) {
    membership.promoteCaughtUpLearner();
    await sleep(100);
  }
  assert.is(proposed.length, 2);
});

test("an explicit promotion needs the learner caught up, not a fresh answer (the core clears that flag every round)", async () => {
  const { membership, table, active, match } = setUp({ voters: [1, 2, 3], learners: [4, 5], wantedVoters: 3 });
  active.delete(4); // between a check-quorum round and its next answer
  await membership.promote(4);
  assert.is(voterCount(table), 4);
  match.set(5, 10);
  const refused = await membership.promote(5).catch((error: unknown) => (error as { code?: string }).code);
  assert.is(refused, "VIGIE_ERR_LEARNER_NOT_READY");
});

test("a leader shutting down just after a check-quorum round still hands over, to the longest log", async () => {
  const { membership, active, match, transfers } = setUp({ voters: [1, 2, 3], learners: [], wantedVoters: 3 });
  membership.sampleActivity(); // the 100 ms sampling timer: both voters answered
  match.set(3, LAST_INDEX + 5);
  active.clear(); // the core's round cleared every flag; no heartbeat answer yet
  await membership.handOffLeadership(1000);
  assert.equal(transfers, [3]);
});

test("among voters with equal logs, the one heard from last takes over", async () => {
  const { membership, active, transfers } = setUp({ voters: [1, 2, 3], learners: [], wantedVoters: 3 });
  membership.sampleActivity();
  await sleep(50);
  active.delete(2); // voter 2 went quiet after the last sample; voter 3 answered since
  await membership.handOffLeadership(1000);
  assert.equal(transfers, [3]);
});

test("with no other voter heard from lately, a leader shuts down without a transfer", async () => {
  const { membership, active, transfers } = setUp({ voters: [1, 2, 3], learners: [], wantedVoters: 3 });
  active.clear();
  await membership.handOffLeadership(1000);
  assert.equal(transfers, []);
});

test.run();
