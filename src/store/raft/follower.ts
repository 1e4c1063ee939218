// Follower behaviour: accepting appends (with the conflict hint for fast backtracking), heartbeats, snapshots,
// forwarded ReadIndex answers, and campaigning when the leader asks for it (TimeoutNow).
import assert from "node:assert/strict";
import { TRANSFER_CONTEXT } from "./election.js";
import type { RaftNode } from "./raft-node.js";
import type { Message } from "./types.js";

export class FollowerState {
  /** A TimeoutNow arrived while a committed conf change was still unapplied: campaign once it is applied. */
  private transferCampaignPending = false;

  constructor(private readonly node: RaftNode) {}

  reset(): void {
    this.transferCampaignPending = false;
  }

  step(m: Message): void {
    const n = this.node;
    switch (m.type) {
      case "app":
        n.electionElapsed = 0;
        n.leader = m.from;
        this.handleAppend(m);
        return;
      case "heartbeat":
        n.electionElapsed = 0;
        n.leader = m.from;
        n.log.commitTo(Math.min(m.commit, n.log.lastIndex()));
        n.sendWith(n.message("heartbeatResp", m.from), 0, m.context);
        return;
      case "snap":
        n.electionElapsed = 0;
        n.leader = m.from;
        this.handleSnapshot(m);
        return;
      case "timeoutNow":
        // Leadership transfer: campaign skipping pre-vote and leases (the leader asked for it) — once committed
        // membership changes are applied, since they may change who votes (see advance()).
        n.log.commitTo(Math.min(m.commit, n.log.lastIndex()));
        this.transferCampaignPending = true;
        this.maybeCampaignForTransfer();
        return;
      case "readIndexResp":
        n.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }
  hasUnappliedConfChange(): boolean {
    const n = this.node;
    const pending = n.log.slice(n.log.applied + 1, n.log.committed + 1, Number.MAX_SAFE_INTEGER);
    return pending === null || pending.some((e) => e.type === "confChange");
  }
  /** Campaigns for a requested transfer if still a follower and no membership change awaits applying. */
  maybeCampaignForTransfer(): void {
    const n = this.node;
    if (!this.transferCampaignPending) return;
    if (n.role !== "follower") {
      this.transferCampaignPending = false;
      return;
    }
    if (this.hasUnappliedConfChange()) return;
    this.transferCampaignPending = false;
    if (n.promotable()) n.election.campaign(false, TRANSFER_CONTEXT);
  }
  handleAppend(m: Message): void {
    const n = this.node;
    // An accepted commit notice goes unanswered (see Message.commitNotice); a rejected one is answered. Only an
    // empty one: entries are always acknowledged, whatever the flag says (the leader never sets it on them).
    const silent = m.commitNotice && m.entries.length === 0;
    if (m.index < n.log.committed) {
      if (!silent) n.sendWith(n.message("appResp", m.from), n.log.committed, "");
      return;
    }
    const lastNew = n.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== null) {
      if (!silent) n.sendWith(n.message("appResp", m.from), lastNew, "");
      return;
    }
    // Conflict hint (fast backtracking): the last index at or below the probe whose term is <= the probe's term.
    const hint = n.log.findConflictByTerm(Math.min(m.index, n.log.lastIndex()), m.logTerm);
    const resp = n.message("appResp", m.from);
    resp.index = m.index;
    resp.reject = true;
    resp.rejectHint = hint.index;
    resp.logTerm = hint.term;
    n.send(resp);
  }
  handleSnapshot(m: Message): void {
    const n = this.node;
    const snap = m.snapshot;
    assert.ok(snap !== null, "raft: snap message without snapshot");
    const { index, term } = snap.metadata;
    if (index <= n.log.committed) {
      n.sendWith(n.message("appResp", m.from), n.log.committed, "");
      return;
    }
    if (n.log.matchTerm(index, term)) {
      // We already have the entry: just fast-forward the commit instead of discarding our log.
      n.log.commitTo(index);
    } else {
      n.log.restore(snap);
      n.setConfState(snap.metadata.confState);
      n.counters.snapshotsInstalled++;
    }
    n.sendWith(n.message("appResp", m.from), n.log.lastIndex(), "");
  }
}
