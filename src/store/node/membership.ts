// Membership changes of a running replica: member add/remove/promote as conf changes (one at a time, matched to
// their application), the peer transport kept in step with the member table, this member's published name and
// client URLs, automatic promotion of a caught-up learner while voters are missing, and the leadership handover
// of a leader that shuts down.
import assert from "node:assert/strict";
import type { Logger } from "../../log.js";
import { randomMemberId } from "../cluster/ids.js";
import { encodeMemberContext, type MemberAttributes, type MemberTable } from "../cluster/members.js";
import { ProposalDroppedError } from "../raft/errors.js";
import type { RaftNode } from "../raft/raft-node.js";
import type { ConfChange, NodeId } from "../raft/types.js";
import type { MemberInfo } from "../replica.js";
import type { RemotePeerError } from "../transport/peer-client.js";
import type { PeerTransport } from "../transport/transport.js";
import {
  LearnerNotReadyError,
  MemberNotFoundError,
  NotLearnerError,
  PeerUrlExistsError,
  ReconfigurationError,
} from "./errors.js";
import { callLeader, NotLeaderHereError } from "./leader-rpc.js";
import { isNoLeader, mapDropped, sleep } from "./proposals.js";
import { WaitTable } from "./requests.js";

/** The peer RPC a follower hands a promotion over with. */
const PROMOTE_RPC = "memberPromote";

/** The leader's refusals of a promotion, as the errors the client API answers; undefined: try again. */
function promotionRefusal(error: RemotePeerError): Error | undefined {
  switch (error.code) {
    case "VIGIE_ERR_MEMBER_NOT_FOUND":
      return new MemberNotFoundError();
    case "VIGIE_ERR_NOT_LEARNER":
      return new NotLearnerError();
    case "VIGIE_ERR_LEARNER_NOT_READY":
      return new LearnerNotReadyError();
    case "VIGIE_ERR_RECONFIGURATION":
      return new ReconfigurationError(error.message.replace(/^etcdserver: re-configuration failed: /, ""));
    default:
      return undefined;
  }
}

export interface MembershipOptions {
  memberId: NodeId;
  name: string;
  clientUrls: string[];
  raft: RaftNode;
  table: MemberTable;
  transport: PeerTransport;
  logger: Logger;
  requestTimeoutMs: number;
  wantedVoters: number;
  /** Runs an operation on the core inside the driver loop. */
  run(op: (raft: RaftNode) => void): Promise<void>;
  /** Proposes this member's attributes as a replicated entry; resolves once applied here. */
  proposeAttributes(payload: Uint8Array): Promise<unknown>;
  isLeader(): boolean;
  leader(): NodeId;
  /** False once the replica stops or was removed. */
  active(): boolean;
  onRemoved(): void;
}

export class Membership {
  private readonly waits = new WaitTable<string, void>(16);

  constructor(private readonly options: MembershipOptions) {}

  async add(peerURLs: string[], isLearner: boolean): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
    const { table } = this.options;
    for (const url of peerURLs) if (table.byPeerUrl(url) !== undefined) throw new PeerUrlExistsError();
    const id = randomMemberId();
    const context = encodeMemberContext({ name: "", peerURLs, clientURLs: [] });
    await this.change({ type: isLearner ? "addLearner" : "addVoter", nodeId: id, context });
    const member = table.get(id);
    assert.ok(member !== undefined, `member ${id} missing right after its conf change applied`);
    return { member, members: table.list() };
  }

  async remove(id: number): Promise<MemberInfo[]> {
    if (!this.options.table.has(id)) throw new MemberNotFoundError();
    await this.change({ type: "removeNode", nodeId: id, context: new Uint8Array(0) });
    return this.options.table.list();
  }

  async promote(id: number): Promise<MemberInfo[]> {
    const member = this.options.table.get(id);
    if (member === undefined) throw new MemberNotFoundError();
    if (!member.isLearner) throw new NotLearnerError();
    // Only the leader tracks how far a learner got, so only the leader can refuse one that has not caught up (or
    // never started): a follower hands the promotion to it, as etcd 3.4 does. Proposed from here, the change would
    // skip that check and could add a voter that holds nothing.
    if (!this.options.isLeader()) return await this.promoteThroughLeader(id);
    if (!this.learnerCaughtUp(id)) throw new LearnerNotReadyError();
    await this.change({ type: "promoteLearner", nodeId: id, context: new Uint8Array(0) });
    return this.options.table.list();
  }

  /** Serves promotions handed over by followers (see promote). */
  serve(): void {
    this.options.transport.handle(PROMOTE_RPC, async (body) => {
      if (!this.options.isLeader()) throw new NotLeaderHereError();
      await this.promote(Number((body as { ID?: unknown }).ID));
      return {};
    });
  }

  /** Asks the leader to promote `id`, then answers once the change is applied here too. */
  private async promoteThroughLeader(id: number): Promise<MemberInfo[]> {
    const key = `promoteLearner:${id}`;
    if (this.waits.has(key)) throw new ReconfigurationError("the same change is already in progress");
    // Waited for before asking: the entry may be applied here before the leader's answer arrives.
    const applied = this.waits.wait(key, this.options.requestTimeoutMs);
    applied.catch(() => {});
    try {
      await callLeader(
        {
          transport: this.options.transport,
          leader: () => this.options.leader(),
          timeoutMs: this.options.requestTimeoutMs,
        },
        PROMOTE_RPC,
        { ID: id },
        promotionRefusal,
      );
    } catch (error) {
      this.waits.reject(key, error as Error);
      throw error;
    }
    await applied;
    return this.options.table.list();
  }

  /** Proposes a conf change (retrying while there is no leader or another change is pending) until applied. */
  private async change(cc: ConfChange): Promise<void> {
    const key = `${cc.type}:${cc.nodeId}`;
    if (this.waits.has(key)) throw new ReconfigurationError("the same change is already in progress");
    const applied = this.waits.wait(key, this.options.requestTimeoutMs);
    applied.catch(() => {});
    const deadlineMs = Date.now() + this.options.requestTimeoutMs;
    for (;;) {
      try {
        await this.options.run((raft) => raft.proposeConfChange(cc));
        break;
      } catch (error) {
        const retry =
          isNoLeader(error) || (error instanceof ProposalDroppedError && error.reason === "confChangePending");
        if (retry && Date.now() + 50 < deadlineMs && this.options.active()) {
          await sleep(50);
          continue;
        }
        this.waits.reject(key, mapDropped(error));
        break;
      }
    }
    await applied;
  }

  /** A conf change was applied (the member table already reflects it). */
  onConfChange(cc: ConfChange): void {
    const { table, transport, memberId } = this.options;
    const member = table.get(cc.nodeId);
    if (cc.type === "removeNode") {
      transport.removePeer(cc.nodeId);
      if (cc.nodeId === memberId) this.options.onRemoved();
    } else if (member?.peerURLs[0] !== undefined) {
      transport.setPeer(cc.nodeId, member.peerURLs[0]);
    }
    this.options.logger.info({ change: cc.type, member: cc.nodeId.toString(16) }, "membership changed");
    this.waits.resolve(`${cc.type}:${cc.nodeId}`, undefined);
  }

  /** The table was replaced by a snapshot's: point the transport at every member. */
  onRestored(): void {
    for (const member of this.options.table.list()) {
      if (member.peerURLs[0] !== undefined) this.options.transport.setPeer(member.ID, member.peerURLs[0]);
    }
  }

  /** Tells the cluster this member's name and client URLs (replicated, like etcd's publish), once per start. */
  async publishAttributes(): Promise<void> {
    const attributes: MemberAttributes = { name: this.options.name, clientURLs: this.options.clientUrls };
    const payload = Buffer.from(JSON.stringify(attributes));
    while (this.options.active()) {
      const current = this.options.table.get(this.options.memberId);
      if (current?.name === attributes.name && current.clientURLs.join(",") === attributes.clientURLs.join(",")) {
        return;
      }
      try {
        await this.options.proposeAttributes(payload);
        return;
      } catch (error) {
        this.options.logger.debug({ err: (error as Error).message }, "publishing member attributes failed; retrying");
        await sleep(500);
      }
    }
  }

  private learnerCaughtUp(id: number): boolean {
    const st = this.options.raft.status();
    const progress = st.progress.get(id);
    const leaderMatch = st.progress.get(this.options.memberId)?.match ?? st.lastIndex;
    if (progress === undefined || !progress.recentActive) return false;
    return progress.match > 0 && progress.match >= leaderMatch * 0.9;
  }

  /** Leader only: promote one caught-up learner while the cluster has fewer voters than wanted. */
  promoteCaughtUpLearner(): void {
    if (!this.options.isLeader() || !this.options.active()) return;
    const st = this.options.raft.status();
    if (st.voters.length >= this.options.wantedVoters || st.learners.length === 0) return;
    const candidate = st.learners.find((id) => this.learnerCaughtUp(id) && this.options.table.get(id)?.name !== "");
    if (candidate === undefined) return;
    this.options.logger.info(
      { member: candidate.toString(16), voters: st.voters.length, wanted: this.options.wantedVoters },
      "promoting a caught-up learner",
    );
    this.change({ type: "promoteLearner", nodeId: candidate, context: new Uint8Array(0) }).catch((error: unknown) =>
      this.options.logger.warn({ err: (error as Error).message }, "automatic promotion failed"),
    );
  }

  /**
   * A leader that is shutting down hands leadership to its most up-to-date voter first, so clients see a
   * handover of a few milliseconds instead of an election timeout. Best effort, bounded by `waitMaxMs`.
   */
  async handOffLeadership(waitMaxMs: number): Promise<void> {
    if (!this.options.isLeader() || !this.options.active()) return;
    const { memberId } = this.options;
    const st = this.options.raft.status();
    let best: NodeId = 0;
    let bestMatch = -1;
    for (const id of st.voters) {
      const progress = st.progress.get(id);
      if (id !== memberId && progress?.recentActive && progress.match > bestMatch) {
        best = id;
        bestMatch = progress.match;
      }
    }
    if (best === 0) return;
    this.options.logger.info({ to: best.toString(16) }, "shutting down: handing leadership over");
    try {
      await this.options.run((raft) => raft.transferLeadership(best));
    } catch {
      return;
    }
    const deadlineMs = Date.now() + waitMaxMs;
    // Done once this replica follows the new leader (the transferee's first append reaches it).
    const following = () => this.options.leader() !== 0 && this.options.leader() !== memberId;
    while (!following() && Date.now() < deadlineMs) await sleep(5);
  }

  rejectAll(error: Error): void {
    this.waits.rejectAll(error);
  }
}
