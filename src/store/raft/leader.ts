// Leader-only behaviour: heartbeats and check-quorum, replication with flow control and fast backtracking,
// commit by counting, snapshots for lagging peers, ReadIndex rounds, proposals and leadership transfer.
import assert from "node:assert/strict";
import { decodeConfChange } from "./codec.js";
import type { DropReason } from "./errors.js";
import { isValidConfChange } from "./membership.js";
import { entrySizeBytes } from "./memory-storage.js";
import type { RaftNode } from "./raft-node.js";
import { type Message, NONE, type NodeId } from "./types.js";

/** Bound on queued ReadIndex requests on a leader (each is a client waiting). */
export const MAX_PENDING_READS = 4096;

interface PendingRead {
  index: number;
  context: string;
  from: NodeId;
  round: number;
}

/** Inserts `value` into `sorted` (highest first). The quorum computations run on every append answer and
 * heartbeat answer over a handful of voters: an insertion into a reused array beats a fresh array and a sort. */
function insertDescending(sorted: number[], value: number): void {
  let k = sorted.length;
  sorted.push(value);
  while (k > 0 && sorted[k - 1]! < value) {
    sorted[k] = sorted[k - 1]!;
    k--;
  }
  sorted[k] = value;
}

export class LeaderState {
  /** Reads confirmed by nothing yet, in round order. */
  private reads: PendingRead[] = [];
  /** Reads that arrived before an entry of this term was committed (thesis §6.4: the commit index may be stale). */
  private readsBeforeCommit: { context: string; from: NodeId }[] = [];
  private round = 0;
  /** Scratch for the quorum computations (voters' match indexes or acked rounds, highest first). */
  private readonly scratch: number[] = [];
  /** Highest read round each peer acknowledged in a heartbeat answer of this term. */
  private ackedRound = new Map<NodeId, number>();

  constructor(private readonly node: RaftNode) {}

  reset(): void {
    this.reads = [];
    this.readsBeforeCommit = [];
    this.round = 0;
    this.ackedRound.clear();
  }

  tick(): void {
    const n = this.node;
    n.electionElapsed++;
    n.heartbeatElapsed++;
    if (n.electionElapsed >= n.config.electionTick) {
      n.electionElapsed = 0;
      // Not for a leader that removed itself: until it has handed over, it may be the only one that knows its
      // removal is committed; were it to step down, a remaining voter could keep needing its vote, which it
      // refuses when its log is longer, and it may no longer campaign: nobody could ever lead. It stays (refusing
      // proposals) until it hears of a newer term.
      if (n.config.checkQuorum && !this.quorumActive() && n.voters.has(n.id)) {
        // Partitioned from a majority: step down so clients go elsewhere instead of waiting on us.
        n.becomeFollower(n.term, NONE);
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned (the transferee is slow or gone).
      n.leadTransferee = NONE;
      if (!n.voters.has(n.id)) this.handOverLeadership();
    }
    if (n.heartbeatElapsed >= n.config.heartbeatTick) {
      n.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  private quorumActive(): boolean {
    const n = this.node;
    let active = 0;
    for (const [id, pr] of n.progress) {
      if (id === n.id) {
        if (n.voters.has(id)) active++;
        continue;
      }
      if (pr.recentActive && !pr.isLearner) active++;
      pr.recentActive = false;
    }
    return active >= n.quorum();
  }

  /** Proposals, reads and transfer requests, local or forwarded. Returns why one was refused. */
  stepRequest(m: Message): DropReason | null {
    const n = this.node;
    switch (m.type) {
      case "prop":
        return this.propose(m);
      case "readIndex":
        return this.readIndex(m.from, m.context);
      case "transferLeader":
        return this.transfer(m.index);
      default:
        assert.fail(`raft: ${m.type} is not a request (node ${n.id})`);
    }
  }

  private propose(m: Message): DropReason | null {
    const n = this.node;
    assert.ok(m.entries.length > 0, "raft: empty proposal");
    if (!n.progress.has(n.id)) return "notMember";
    if (n.leadTransferee !== NONE) return "transferInProgress";
    let bytes = 0;
    for (const e of m.entries) bytes += e.data.length;
    if (n.uncommittedBytes > 0 && n.uncommittedBytes + bytes > n.config.maxUncommittedEntriesBytes) {
      return "uncommittedLimit";
    }
    let confIndex = 0;
    for (let k = 0; k < m.entries.length; k++) {
      const e = m.entries[k]!;
      if (e.type !== "confChange") continue;
      if (n.pendingConfIndex > n.log.applied || confIndex > 0) return "confChangePending";
      const reason = this.validateConfChange(e.data);
      if (reason !== null) return reason;
      confIndex = n.log.lastIndex() + 1 + k;
    }
    if (confIndex > 0) n.pendingConfIndex = confIndex;
    n.appendEntries(m.entries.slice());
    this.broadcastAppend();
    return null;
  }

  private validateConfChange(data: Uint8Array): DropReason | null {
    try {
      return isValidConfChange(this.node.confState(), decodeConfChange(data)) ? null : "invalidConfChange";
    } catch {
      return "invalidConfChange";
    }
  }

  private readIndex(from: NodeId, context: string): DropReason | null {
    const n = this.node;
    if (this.reads.length + this.readsBeforeCommit.length >= MAX_PENDING_READS) return "tooManyReads";
    if (n.log.term(n.log.committed) !== n.term) {
      this.readsBeforeCommit.push({ context, from });
      return null;
    }
    this.addRead(from, context);
    return null;
  }

  private addRead(from: NodeId, context: string): void {
    const n = this.node;
    assert.ok(this.reads.length <= MAX_PENDING_READS, "raft: read queue bound");
    this.round++;
    this.reads.push({ index: n.log.committed, context, from, round: this.round });
    if (n.voters.size === 1 && n.voters.has(n.id)) {
      this.releaseReads();
      return;
    }
    this.broadcastHeartbeat();
  }

  private transfer(to: NodeId): DropReason | null {
    const n = this.node;
    if (to === n.id) return null;
    if (!n.voters.has(to)) return "invalidTransferee";
    if (n.leadTransferee === to) return null;
    n.leadTransferee = to;
    n.electionElapsed = 0;
    n.counters.transfersStarted++;
    const pr = n.progress.get(to)!;
    if (pr.match === n.log.lastIndex()) this.sendTimeoutNow(to);
    else this.maybeSendAppend(to, true);
    return null;
  }

  /** The transferee's log equals ours: it may campaign now. The commit index comes along (as in a heartbeat,
   * capped at its match) so it applies pending membership changes before campaigning. */
  private sendTimeoutNow(to: NodeId): void {
    const n = this.node;
    const match = n.progress.get(to)?.match ?? 0;
    const m = n.message("timeoutNow", to);
    m.commit = Math.min(match, n.log.committed);
    n.send(m);
  }

  /** We were removed from the voters: transfer leadership to the remaining voter with the longest log. */
  handOverLeadership(): void {
    const n = this.node;
    let best = NONE;
    let bestMatch = -1;
    for (const id of n.voters) {
      const match = n.progress.get(id)?.match ?? 0;
      if (match > bestMatch || (match === bestMatch && id < best)) {
        best = id;
        bestMatch = match;
      }
    }
    if (best !== NONE) this.transfer(best);
  }

  /** Messages from peers in our term. */
  stepPeer(m: Message): void {
    const n = this.node;
    switch (m.type) {
      case "appResp":
        this.handleAppResp(m);
        return;
      case "heartbeatResp":
        this.handleHeartbeatResp(m);
        return;
      case "app":
      case "heartbeat":
      case "snap":
        assert.fail(`raft: two leaders in term ${m.term}: ${n.id} and ${m.from}`);
        return;
      default:
        return;
    }
  }

  private handleAppResp(m: Message): void {
    const n = this.node;
    const pr = n.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    if (m.reject) {
      // Fast backtracking: skip the whole conflicting term instead of one index per round trip.
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = n.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match + 1 >= n.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.inflights.freeLE(m.index);
    if (this.maybeCommit()) this.broadcastCommit();
    else if (wasPaused) this.maybeSendAppend(m.from, true);
    // Pipelining: fill the in-flight window.
    while (this.maybeSendAppend(m.from, false)) {}
    if (m.from === n.leadTransferee && pr.match === n.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResp(m: Message): void {
    const n = this.node;
    const pr = n.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    pr.probeSent = false;
    // All in-flight appends may have been lost: free one slot so the follower can tell us where it is.
    if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < n.log.lastIndex()) this.maybeSendAppend(m.from, true);
    if (m.context !== "" && n.voters.has(m.from)) {
      const round = Number(m.context);
      if (Number.isSafeInteger(round) && round > (this.ackedRound.get(m.from) ?? 0)) {
        this.ackedRound.set(m.from, round);
        this.releaseReads();
      }
    }
  }

  /** Serves every read whose round a quorum of voters acknowledged (we were still leader when it arrived). */
  private releaseReads(): void {
    const n = this.node;
    if (this.reads.length === 0) return;
    const acked = this.scratch;
    acked.length = 0;
    for (const id of n.voters) {
      insertDescending(acked, id === n.id ? Number.MAX_SAFE_INTEGER : (this.ackedRound.get(id) ?? 0));
    }
    const confirmedRound = acked[n.quorum() - 1]!;
    let served = 0;
    while (served < this.reads.length && this.reads[served]!.round <= confirmedRound) {
      const read = this.reads[served]!;
      n.counters.readsServed++;
      if (read.from === n.id) n.readStates.push({ index: read.index, context: read.context });
      else n.sendWith(n.message("readIndexResp", read.from), read.index, read.context);
      served++;
    }
    if (served > 0) this.reads = this.reads.slice(served);
  }

  handleUnreachable(peer: NodeId): void {
    const pr = this.node.progress.get(peer);
    if (pr !== undefined && pr.state === "replicate") pr.becomeProbe();
  }

  handleSnapshotStatus(peer: NodeId, ok: boolean): void {
    const pr = this.node.progress.get(peer);
    if (pr === undefined || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for a heartbeat answer before probing, so a failed send is not retried in a tight loop.
    pr.probeSent = true;
  }

  afterConfChange(): void {
    if (this.maybeCommit()) this.broadcastAppend();
    else this.broadcastAppend();
    this.releaseReads();
  }

  /** Commits the highest index a quorum of voters has, if it is of our term (Raft §5.4.2). */
  maybeCommit(): boolean {
    const n = this.node;
    // Runs on every append answer: a reused scratch array sorted in place (insertion sort, a handful of
    // voters) instead of a fresh array and a comparator per call.
    const matches = this.scratch;
    matches.length = 0;
    for (const id of n.voters) insertDescending(matches, n.progress.get(id)?.match ?? 0);
    if (matches.length === 0) return false;
    const candidate = matches[n.quorum() - 1]!;
    if (candidate <= n.log.committed || n.log.term(candidate) !== n.term) return false;
    n.log.commitTo(candidate);
    if (this.readsBeforeCommit.length > 0) {
      const waiting = this.readsBeforeCommit;
      this.readsBeforeCommit = [];
      for (const r of waiting) this.addRead(r.from, r.context);
    }
    return true;
  }

  broadcastAppend(): void {
    const n = this.node;
    for (const id of n.progress.keys()) if (id !== n.id) this.maybeSendAppend(id, true);
  }

  /** After a commit: each peer gets what it lacks, or else a commit notice (see Message.commitNotice). */
  private broadcastCommit(): void {
    const n = this.node;
    for (const id of n.progress.keys()) if (id !== n.id) this.maybeSendAppend(id, true, true);
  }

  broadcastHeartbeat(): void {
    const n = this.node;
    const context = this.reads.length > 0 ? String(this.round) : "";
    for (const [id, pr] of n.progress) {
      if (id === n.id) continue;
      const commit = Math.min(pr.match, n.log.committed);
      const m = n.message("heartbeat", id);
      m.commit = commit;
      n.sendWith(m, 0, context);
    }
  }

  /**
   * Sends the next append (or a snapshot) to a peer unless flow control pauses it. Returns whether it sent. An empty
   * append to a peer in "replicate" is a commit notice when `commitNotice` (only after a commit: an empty append
   * sent to find out where a peer is, after a heartbeat answer, must be answered).
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean, commitNotice = false): boolean {
    const n = this.node;
    const pr = n.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = n.log.term(prevIndex);
    const last = n.log.lastIndex();
    const entries = prevTerm === null ? null : n.log.slice(pr.next, last + 1, n.config.maxSizePerMsgBytes);
    if (entries !== null && entries.length === 0 && !sendIfEmpty) return false;
    if (prevTerm === null || entries === null) {
      // The entries it needs were compacted: send the snapshot (only to a peer we heard from recently).
      if (!pr.recentActive) return false;
      const snapshot = n.log.snapshot();
      assert.ok(snapshot.metadata.index >= prevIndex || snapshot.metadata.index > 0, "raft: no snapshot to send");
      pr.becomeSnapshot(snapshot.metadata.index);
      n.counters.snapshotsSent++;
      const m = n.message("snap", to);
      m.snapshot = snapshot;
      n.send(m);
      return true;
    }
    const m = n.message("app", to);
    m.logTerm = prevTerm;
    m.entries = entries;
    m.commit = n.log.committed;
    m.commitNotice = commitNotice && entries.length === 0 && pr.state === "replicate";
    n.sendWith(m, prevIndex, "");
    if (pr.state === "replicate" && entries.length > 0) {
      let bytes = 0;
      for (const e of entries) bytes += entrySizeBytes(e);
      const lastSent = entries[entries.length - 1]!.index;
      pr.next = lastSent + 1;
      pr.inflights.add(lastSent, bytes);
    } else if (pr.state === "probe") {
      pr.probeSent = true;
    }
    return true;
  }
}
