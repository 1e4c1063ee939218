// The Raft state machine: roles, elections (pre-vote, check-quorum), replication with flow control, commit by
// counting, ReadIndex, membership changes and leadership transfer. Pure and deterministic; see types.ts for the
// driver contract. Replication and read handling on the leader live in leader.ts.
import assert from "node:assert/strict";
import { decodeConfChange, encodeConfChange } from "./codec.js";
import { ElectionState, TRANSFER_CONTEXT } from "./election.js";
import { type DropReason, ProposalDroppedError } from "./errors.js";
import { FollowerState } from "./follower.js";
import { LeaderState } from "./leader.js";
import { bootstrapEntries, nextConfState } from "./membership.js";
import { entrySizeBytes } from "./memory-storage.js";
import { Progress } from "./progress.js";
import { RaftLog } from "./raft-log.js";
import {
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  NONE,
  type NodeId,
  type RaftConfig,
  type RaftStatus,
  type RaftStorage,
  type ReadState,
  type Ready,
  type Role,
  type SoftState,
} from "./types.js";

const NO_ENTRIES: readonly Entry[] = Object.freeze([]);
const NO_MESSAGES: readonly Message[] = Object.freeze([]);
const NO_READ_STATES: readonly ReadState[] = Object.freeze([]);

function containsConfChange(entries: readonly Entry[]): boolean {
  for (const e of entries) if (e.type === "confChange") return true;
  return false;
}

/** Bound on committed entry bytes handed out in one Ready. */
const MAX_COMMITTED_BYTES_PER_READY = 4 * 1024 * 1024;

/** Counters that show which protocol features were exercised (simulator output, /metrics). */
export interface RaftCounters {
  electionsStarted: number;
  preVotesStarted: number;
  preVoteRejections: number;
  leadersElected: number;
  snapshotsSent: number;
  snapshotsInstalled: number;
  confChangesApplied: number;
  readsServed: number;
  transfersStarted: number;
  proposalsDropped: number;
}

/** All counters at zero: a new node's, or the start of a sum over nodes. */
export function zeroCounters(): RaftCounters {
  return {
    electionsStarted: 0,
    preVotesStarted: 0,
    preVoteRejections: 0,
    leadersElected: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    confChangesApplied: 0,
    readsServed: 0,
    transfersStarted: 0,
    proposalsDropped: 0,
  };
}

/** A message being filled in before it is sent (Message itself is read-only for everyone else). */
export type MessageDraft = { -readonly [K in keyof Message]: Message[K] };

function emptyMessage(type: MessageType, from: NodeId, to: NodeId, term: number): MessageDraft {
  return {
    type,
    from,
    to,
    term,
    logTerm: 0,
    index: 0,
    // One shared frozen array: most messages carry no entries, and a fresh [] per heartbeat and answer is garbage.
    entries: NO_ENTRIES,
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: "",
    snapshot: null,
    commitNotice: false,
  };
}

/** A copy of `m` readdressed (field for field, not a spread: every message keeps one object shape, which
 * keeps the per-message paths monomorphic and fast). */
function forwarded(m: Message, from: NodeId, to: NodeId): Message {
  return {
    type: m.type,
    from,
    to,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries,
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context,
    snapshot: m.snapshot,
    commitNotice: m.commitNotice,
  };
}

export { TRANSFER_CONTEXT };

export class RaftNode {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;
  term = 0;
  vote: NodeId = NONE;
  leader: NodeId = NONE;
  role: Role = "follower";
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  /** Replication progress per member; meaningful on the leader only. */
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  leadTransferee: NodeId = NONE;
  /** A conf change at or below this index may still be unapplied: no new one may be proposed until applied. */
  pendingConfIndex = 0;
  uncommittedBytes = 0;
  readonly leaderState: LeaderState;
  readonly follower: FollowerState;
  readonly election: ElectionState;
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  readonly counters: RaftCounters = zeroCounters();
  private prevHardState: HardState;
  private prevSoftState: SoftState;

  constructor(config: RaftConfig, storage: RaftStorage) {
    if (!(Number.isSafeInteger(config.id) && config.id > 0)) assert.fail(`raft: invalid node id ${config.id}`);
    assert.ok(
      config.heartbeatTick > 0 && config.heartbeatTick < config.electionTick,
      "raft: need 0 < heartbeatTick < electionTick",
    );
    assert.ok(
      config.maxInflightMsgs > 0 && config.maxSizePerMsgBytes > 0,
      "raft: flow-control limits must be positive",
    );
    assert.ok(config.maxUncommittedEntriesBytes > 0, "raft: maxUncommittedEntriesBytes must be positive");
    this.id = config.id;
    this.config = config;
    this.log = new RaftLog(storage, config.applied);
    this.leaderState = new LeaderState(this);
    this.follower = new FollowerState(this);
    this.election = new ElectionState(this);
    const { hardState, confState } = storage.initialState();
    const storageEmpty = storage.lastIndex() === 0 && hardState.term === 0;
    if (storageEmpty && config.voters.length > 0) {
      // A brand-new cluster member: write the initial membership as committed term-1 entries (see membership.ts).
      const entries = bootstrapEntries(config.voters, config.learners);
      this.term = 1;
      this.log.append(entries);
      this.log.commitTo(entries.length);
      this.setConfState({ voters: config.voters, learners: config.learners });
    } else {
      this.term = hardState.term;
      this.vote = hardState.vote;
      if (!(hardState.commit <= this.log.lastIndex()))
        assert.fail(`raft: stored commit ${hardState.commit} beyond last index`);
      this.log.commitTo(hardState.commit);
      if (!(this.log.applied <= this.log.committed))
        assert.fail(`raft: applied ${config.applied} beyond commit ${hardState.commit}`);
      // Membership = the snapshot's (or, before any snapshot, the bootstrap lists) plus every conf change the
      // state machine already applied; later ones are re-applied by the driver through applyConfChange().
      const noSnapshot = confState.voters.length === 0 && confState.learners.length === 0;
      let cs: ConfState = noSnapshot ? { voters: config.voters, learners: config.learners } : confState;
      // Replay from just after the snapshot: entries kept behind it for slow followers are already in its ConfState.
      const from = storage.snapshot().metadata.index + 1;
      const applied = this.log.slice(from, this.log.applied + 1, Number.MAX_SAFE_INTEGER) ?? [];
      for (const e of applied) if (e.type === "confChange") cs = nextConfState(cs, decodeConfChange(e.data));
      this.setConfState(cs);
    }
    this.becomeFollower(this.term, NONE);
    // The bootstrap hard state (term 1, commit n) differs from the stored one, so the first Ready persists it.
    this.prevHardState = hardState;
    this.prevSoftState = { leader: this.leader, role: this.role };
  }

  // ---- public API (see the contract in types.ts) ----

  tick(): void {
    if (this.role === "leader") this.leaderState.tick();
    else this.election.tick();
  }

  /** Handles a message from a peer. Invalid or stale messages are ignored, never thrown. */
  step(m: Message): void {
    if (m.to !== this.id || m.from === this.id) return;
    if (m.type === "prop" || m.type === "readIndex" || m.type === "transferLeader") {
      // Forwarded requests carry no term: they are served by whoever leads now.
      this.stepLocal(m);
      return;
    }
    this.stepRemote(m);
  }

  propose(data: Uint8Array): void {
    this.throwIfDropped(this.stepLocal(this.propMessage([{ term: 0, index: 0, type: "normal", data }])));
  }

  proposeConfChange(cc: ConfChange): void {
    if (!(Number.isSafeInteger(cc.nodeId) && cc.nodeId > 0)) assert.fail(`raft: invalid conf change node ${cc.nodeId}`);
    const data = encodeConfChange(cc);
    this.throwIfDropped(this.stepLocal(this.propMessage([{ term: 0, index: 0, type: "confChange", data }])));
  }

  readIndex(context: string): void {
    const m = emptyMessage("readIndex", this.id, this.id, 0);
    m.context = context;
    this.throwIfDropped(this.stepLocal(m));
  }

  transferLeadership(to: NodeId): void {
    const m = emptyMessage("transferLeader", this.id, this.id, 0);
    m.index = to;
    this.throwIfDropped(this.stepLocal(m));
  }

  reportUnreachable(peer: NodeId): void {
    if (this.role === "leader") this.leaderState.handleUnreachable(peer);
  }

  reportSnapshot(peer: NodeId, ok: boolean): void {
    if (this.role === "leader") this.leaderState.handleSnapshotStatus(peer, ok);
  }

  /** Applies a committed conf change (call it when applying its entry); returns the new membership. */
  applyConfChange(cc: ConfChange): ConfState {
    this.counters.confChangesApplied++;
    this.setConfState(nextConfState(this.confState(), cc));
    if (this.role === "leader") {
      if (this.leadTransferee !== NONE && !this.voters.has(this.leadTransferee)) this.leadTransferee = NONE;
      this.leaderState.afterConfChange();
      // A removed leader does not vanish at once: the remaining voters may not know yet that its removal is
      // committed (they apply membership changes at apply time), and in a 2 → 1 change the survivor could
      // never win without it. It keeps sending heartbeats (which carry the commit index), refuses proposals,
      // and hands leadership to the most up-to-date remaining voter; it steps down when that one takes over.
      if (!this.voters.has(this.id)) this.leaderState.handOverLeadership();
    }
    return this.confState();
  }

  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.log.unstableEntries.length > 0 ||
      this.log.unstableSnapshot !== null ||
      this.log.hasNextCommittedEntries() ||
      this.readStates.length > 0 ||
      this.leader !== this.prevSoftState.leader ||
      this.role !== this.prevSoftState.role ||
      this.term !== this.prevHardState.term ||
      this.vote !== this.prevHardState.vote ||
      this.log.committed !== this.prevHardState.commit
    );
  }

  ready(): Ready {
    const prev = this.prevHardState;
    const commit = this.log.committed;
    const termOrVoteChanged = this.term !== prev.term || this.vote !== prev.vote;
    const hardChanged = termOrVoteChanged || commit !== prev.commit;
    const softChanged = this.leader !== this.prevSoftState.leader || this.role !== this.prevSoftState.role;
    const unstable = this.log.unstableEntries;
    // Shared empty arrays keep an idle Ready allocation-free (the simulator builds millions of them).
    const entries = unstable.length === 0 ? NO_ENTRIES : unstable.slice();
    const messages = this.msgs.length === 0 ? NO_MESSAGES : this.msgs;
    const readStates = this.readStates.length === 0 ? NO_READ_STATES : this.readStates;
    const hardState = hardChanged ? { term: this.term, vote: this.vote, commit } : null;
    const committedEntries = this.log.hasNextCommittedEntries()
      ? this.log.nextCommittedEntries(MAX_COMMITTED_BYTES_PER_READY)
      : NO_ENTRIES;
    const rd: Ready = {
      softState: softChanged ? { leader: this.leader, role: this.role } : null,
      hardState,
      entries,
      snapshot: this.log.unstableSnapshot,
      committedEntries,
      messages,
      readStates,
      // A commit index covering a membership change is made durable before the change is applied: a node that
      // restarted having forgotten it could otherwise wait forever for the vote of a member already gone.
      mustSync:
        entries.length > 0 ||
        this.log.unstableSnapshot !== null ||
        termOrVoteChanged ||
        containsConfChange(committedEntries),
    };
    if (messages.length > 0) this.msgs = [];
    if (readStates.length > 0) this.readStates = [];
    if (hardState !== null) this.prevHardState = hardState;
    if (softChanged) this.prevSoftState = rd.softState!;
    return rd;
  }

  advance(rd: Ready): void {
    if (rd.snapshot !== null) {
      this.log.stableSnapshotTo(rd.snapshot.metadata.index);
      if (rd.snapshot.metadata.index > this.log.applied) this.log.appliedTo(rd.snapshot.metadata.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined && lastCommitted.index > this.log.applied) {
      this.log.appliedTo(lastCommitted.index);
      if (this.role === "leader") {
        let bytes = 0;
        for (const e of rd.committedEntries) bytes += e.data.length;
        this.uncommittedBytes = Math.max(0, this.uncommittedBytes - bytes);
      }
    }
    this.follower.maybeCampaignForTransfer();
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  status(): RaftStatus {
    const progress = new Map();
    if (this.role === "leader") for (const [id, pr] of this.progress) progress.set(id, pr.view());
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      role: this.role,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      voters: this.confState().voters,
      learners: this.confState().learners,
      progress,
      leadTransferee: this.leadTransferee,
    };
  }

  // ---- internals shared with leader.ts ----

  send(m: Message): void {
    assert.ok(m.to !== this.id, "raft: never send to self");
    this.msgs.push(m);
  }

  message(type: MessageType, to: NodeId): MessageDraft {
    return emptyMessage(type, this.id, to, this.term);
  }

  /** Sends a message with `index` and `context` set (the hot paths: no intermediate object). */
  sendWith(m: MessageDraft, index: number, context: string): void {
    m.index = index;
    m.context = context;
    this.send(m);
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  promotable(): boolean {
    return this.voters.has(this.id);
  }

  private throwIfDropped(reason: DropReason | null): void {
    if (reason === null) return;
    this.counters.proposalsDropped++;
    const where = this.leader === NONE ? "no leader is known" : `leader is ${this.leader}, this node is ${this.role}`;
    throw new ProposalDroppedError(reason, `node ${this.id} term ${this.term}: ${where}`);
  }

  private propMessage(entries: Entry[]): Message {
    const m = emptyMessage("prop", this.id, this.id, 0);
    m.entries = entries;
    return m;
  }

  /** Requests that do not depend on the message term: served by the leader, forwarded by others. */
  private stepLocal(m: Message): DropReason | null {
    if (this.role === "leader") return this.leaderState.stepRequest(m);
    if (m.type === "readIndex" && m.from !== this.id) return "notLeader";
    if (this.leader === NONE) return "noLeader";
    if (this.role !== "follower") return "noLeader";
    if (m.from !== this.id) return "notLeader"; // a follower never forwards a forwarded request twice
    if (m.type === "transferLeader" && m.index === this.leader) return null;
    this.send(forwarded(m, this.id, this.leader));
    return null;
  }

  private stepRemote(m: Message): void {
    if (m.term > this.term) {
      if (m.type === "vote" || m.type === "preVote") {
        const inLease =
          this.config.checkQuorum && this.leader !== NONE && this.electionElapsed < this.config.electionTick;
        // Leader stickiness: while we hear from a leader, a (pre-)candidate cannot disrupt it. Transfers bypass it.
        if (inLease && m.context !== TRANSFER_CONTEXT) return;
      }
      if (m.type === "preVote") {
        // Answer below without changing our term: pre-vote never disrupts.
      } else if (m.type === "preVoteResp" && !m.reject) {
        // Our pre-vote was granted for term+1: the real election bumps the term.
      } else if (m.type === "app" || m.type === "heartbeat" || m.type === "snap") {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (m.type === "heartbeat" || m.type === "app") {
        // A stale leader (e.g. behind a healed partition) learns our term and steps down (Raft §5.1). Always, not
        // only with pre-vote or check-quorum (etcd's choice, which counts on our vote requests reaching it): a
        // voter whose configuration is stale may not count that leader as a voter and never ask it for a vote,
        // while the leader needs it for its quorum; both would then wait forever. A member is sent no appends once
        // its removal is applied, so this answer gives a removed one no new way to disrupt the cluster.
        this.send(this.message("appResp", m.from));
      } else if (m.type === "preVote" || m.type === "vote") {
        // Refused with our term, so the candidate catches up (Raft §5.1). For a vote too, not only a pre-vote: a
        // voter with a stale configuration may never send that candidate a vote request of its own (the only
        // other way it would learn our term) while the candidate needs our vote; neither could ever win.
        const resp = this.message(m.type === "vote" ? "voteResp" : "preVoteResp", m.from);
        resp.reject = true;
        this.send(resp);
      }
      return;
    }

    switch (m.type) {
      case "vote":
      case "preVote":
        this.election.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case "leader":
        this.leaderState.stepPeer(m);
        return;
      case "candidate":
      case "preCandidate":
        this.election.step(m);
        return;
      case "follower":
        this.follower.step(m);
        return;
    }
  }

  private reset(term: number): void {
    if (this.term !== term) {
      if (!(term > this.term)) assert.fail(`raft: term went back from ${this.term} to ${term}`);
      this.term = term;
      this.vote = NONE;
    }
    this.leader = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    // Randomized in [electionTick, 2*electionTick) so that split votes resolve (Raft §5.2).
    this.randomizedElectionTimeout =
      this.config.electionTick + Math.floor(this.config.random() * this.config.electionTick);
    this.leadTransferee = NONE;
    this.follower.reset();
    this.votes.clear();
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    const last = this.log.lastIndex();
    for (const [id, pr] of this.progress) this.progress.set(id, this.newProgress(id, pr.isLearner, last));
    this.leaderState.reset();
  }

  private newProgress(id: NodeId, isLearner: boolean, lastIndex: number): Progress {
    const pr = new Progress(lastIndex + 1, isLearner, this.config.maxInflightMsgs, this.config.maxInflightBytes);
    if (id === this.id) pr.match = lastIndex;
    return pr;
  }

  becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.leader = leader;
    this.role = "follower";
  }

  becomePreCandidate(): void {
    assert.ok(this.role !== "leader", "raft: leader cannot become pre-candidate");
    // No term change and no vote: a pre-candidate that loses leaves no trace.
    this.votes.clear();
    this.leader = NONE;
    this.role = "preCandidate";
  }

  becomeCandidate(): void {
    assert.ok(this.role !== "leader", "raft: leader cannot become candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  becomeLeader(): void {
    if (!(this.role === "candidate")) assert.fail(`raft: ${this.role} cannot become leader`);
    this.reset(this.term);
    this.leader = this.id;
    this.role = "leader";
    this.counters.leadersElected++;
    for (const pr of this.progress.values()) pr.recentActive = true;
    this.progress.get(this.id)?.becomeReplicate();
    // The no-op of our term: committing it commits everything before (Raft §5.4.2), and makes ReadIndex safe.
    this.appendEntries([{ term: 0, index: 0, type: "normal", data: new Uint8Array(0) }]);
    // Conservatively, an earlier conf change may still be unapplied: no new one before our no-op is applied,
    // which also rules out the single-server change bug (a leader must commit in its term first).
    this.pendingConfIndex = this.log.lastIndex();
    this.leaderState.broadcastAppend();
  }

  /** Leader: stamps entries with our term and the next indexes, appends them, and commits if possible. */
  appendEntries(entries: Entry[]): void {
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => ({ term: this.term, index: ++index, type: e.type, data: e.data }));
    this.log.append(stamped);
    for (const e of stamped) this.uncommittedBytes += e.data.length;
    this.progress.get(this.id)?.maybeUpdate(this.log.lastIndex());
    this.leaderState.maybeCommit();
  }

  setConfState(cs: ConfState): void {
    const last = this.log.lastIndex();
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    for (const id of cs.learners) if (this.voters.has(id)) assert.fail(`raft: node ${id} is both voter and learner`);
    const members = new Set([...cs.voters, ...cs.learners]);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const isLearner = this.learners.has(id);
      const pr = this.progress.get(id);
      if (pr === undefined) {
        const fresh = this.newProgress(id, isLearner, last);
        // A new member starts as "recently active" so check-quorum does not depose the leader at once.
        fresh.recentActive = true;
        this.progress.set(id, fresh);
      } else {
        pr.isLearner = isLearner;
      }
    }
    for (const id of [...this.votes.keys()]) if (!this.voters.has(id)) this.votes.delete(id);
  }

  /** Decodes a conf change entry (for validation on the leader). */
  static decodeConfChange(entry: Entry): ConfChange {
    return decodeConfChange(entry.data);
  }

  entrySize(entry: Entry): number {
    return entrySizeBytes(entry);
  }
}
