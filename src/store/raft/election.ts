// Elections: the randomized election timeout, pre-vote and vote requests, answering them (Raft §5.2, §5.4.1,
// thesis §9.6 for pre-vote), and counting the answers of (pre-)candidates.
import type { RaftNode } from "./raft-node.js";
import type { Message, MessageType } from "./types.js";
import { NONE } from "./types.js";

/** Context of a vote request caused by leadership transfer: voters skip their leader-lease check. */
export const TRANSFER_CONTEXT = "transfer";

export class ElectionState {
  constructor(private readonly node: RaftNode) {}

  handleVoteRequest(m: Message): void {
    const n = this.node;
    const isPre = m.type === "preVote";
    const canVote = n.vote === m.from || (n.vote === NONE && n.leader === NONE) || (isPre && m.term > n.term);
    const respType = isPre ? "preVoteResp" : "voteResp";
    if (canVote && n.log.isUpToDate(m.index, m.logTerm)) {
      // A granted pre-vote answers with the candidate's future term so it can count it.
      const resp = n.message(respType, m.from);
      resp.term = m.term;
      n.send(resp);
      if (!isPre) {
        n.electionElapsed = 0;
        n.vote = m.from;
      }
    } else {
      const resp = n.message(respType, m.from);
      resp.reject = true;
      // Our commit index as (index, term): a candidate holding that very entry may commit up to it (Log Matching
      // makes its prefix ours). A removed member that refuses its vote (its log is longer) may be the only one that
      // knows its removal is committed; the candidate, once it applies it, no longer needs that vote.
      const commitTerm = n.log.term(n.log.committed);
      if (commitTerm !== null) {
        resp.index = n.log.committed;
        resp.logTerm = commitTerm;
      }
      n.send(resp);
    }
  }
  step(m: Message): void {
    const n = this.node;
    const myVoteResp = n.role === "preCandidate" ? "preVoteResp" : "voteResp";
    switch (m.type) {
      case "app":
      case "heartbeat":
      case "snap":
        n.becomeFollower(m.term, m.from);
        n.follower.step(m);
        return;
      case "voteResp":
      case "preVoteResp": {
        if (m.reject && m.index > n.log.committed && n.log.matchTerm(m.index, m.logTerm)) n.log.commitTo(m.index);
        if (m.type !== myVoteResp) return;
        if (m.reject && m.type === "preVoteResp") n.counters.preVoteRejections++;
        if (!n.voters.has(m.from) || n.votes.has(m.from)) return;
        n.votes.set(m.from, !m.reject);
        const { granted, rejected } = this.tally();
        if (granted >= n.quorum()) {
          if (n.role === "preCandidate") this.campaign(false, "");
          else n.becomeLeader();
        } else if (rejected >= n.quorum()) {
          n.becomeFollower(n.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }
  tally(): { granted: number; rejected: number } {
    const n = this.node;
    let granted = 0;
    let rejected = 0;
    for (const [id, v] of n.votes) {
      if (!n.voters.has(id)) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected };
  }
  tick(): void {
    const n = this.node;
    n.electionElapsed++;
    if (n.promotable() && n.electionElapsed >= n.randomizedElectionTimeout) {
      n.electionElapsed = 0;
      this.hup();
    }
  }
  hup(): void {
    const n = this.node;
    if (n.role === "leader" || !n.promotable()) return;
    // An unapplied conf change could change whether we may campaign at all: wait until it is applied.
    if (n.follower.hasUnappliedConfChange()) return;
    this.campaign(n.config.preVote, "");
  }
  campaign(pre: boolean, context: string): void {
    const n = this.node;
    let voteTerm: number;
    let type: MessageType;
    if (pre) {
      n.becomePreCandidate();
      n.counters.preVotesStarted++;
      voteTerm = n.term + 1;
      type = "preVote";
    } else {
      n.becomeCandidate();
      n.counters.electionsStarted++;
      voteTerm = n.term;
      type = "vote";
    }
    n.votes.set(n.id, true);
    if (this.tally().granted >= n.quorum()) {
      if (pre) this.campaign(false, context);
      else n.becomeLeader();
      return;
    }
    const lastIndex = n.log.lastIndex();
    const lastTerm = n.log.lastTerm();
    for (const id of n.voters) {
      if (id === n.id) continue;
      const m = n.message(type, id);
      m.term = voteTerm;
      m.index = lastIndex;
      m.logTerm = lastTerm;
      m.context = context;
      n.send(m);
    }
  }
}
