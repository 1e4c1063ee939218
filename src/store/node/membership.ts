// Membership changes of a running replica: member add/remove/promote/update as conf changes (one at a time, matched to
// their application), the peer transport kept in step with the member table, this member's published name and
// client URLs, automatic promotion of a caught-up learner while voters are missing, and the leadership handover
// of a leader that shuts down.
import assert from "node:assert/strict";
import type { Logger } from "../../log.js";
import { getProbe } from "../cluster/bootstrap.js";
import { randomMemberId } from "../cluster/ids.js";
import {
  decodeMemberContext,
  encodeMemberContext,
  type MemberAttributes,
  type MemberTable,
} from "../cluster/members.js";
import { GrpcCode, MvccError } from "../mvcc/errors.js";
import { ProposalDroppedError } from "../raft/errors.js";
import type { RaftNode } from "../raft/raft-node.js";
import type { ConfChange, NodeId } from "../raft/types.js";
import type { MemberInfo } from "../replica.js";
import type { RemotePeerError } from "../transport/peer-client.js";
import type { PeerTransport } from "../transport/transport.js";
import {
  LeaderChangedError,
  LearnerNotReadyError,
  MemberNotFoundError,
  NotLearnerError,
  PeerUrlExistsError,
  ReconfigurationError,
} from "./errors.js";
import { callLeader, LeaderIsHereError, NotLeaderHereError } from "./leader-rpc.js";
import { isNoLeader, mapDropped, sleep } from "./proposals.js";
import { WaitTable } from "./requests.js";

/** The peer RPC a follower or learner hands a membership change (add, remove, promote) to the leader with. */
const CHANGE_RPC = "memberChange";

/** A conf change as it travels to the leader (its context is JSON text). */
interface WireChange {
  type: ConfChange["type"];
  nodeId: number;
  context: string;
}

const CHANGE_TYPES: ReadonlySet<string> = new Set([
  "addVoter",
  "addLearner",
  "promoteLearner",
  "removeNode",
  "updateNode",
]);

function toWire(cc: ConfChange): WireChange {
  return { type: cc.type, nodeId: cc.nodeId, context: Buffer.from(cc.context).toString("utf8") };
}

/** The change a peer handed over; a malformed one is a programmer error of that peer, answered as an error. */
function fromWire(body: unknown): ConfChange {
  const wire = body as Partial<WireChange>;
  if (
    typeof wire.type !== "string" ||
    !CHANGE_TYPES.has(wire.type) ||
    !Number.isSafeInteger(wire.nodeId) ||
    (wire.nodeId as number) <= 0 ||
    typeof wire.context !== "string"
  ) {
    throw new Error(`malformed membership change ${JSON.stringify(body).slice(0, 200)}`);
  }
  return { type: wire.type, nodeId: wire.nodeId as number, context: Buffer.from(wire.context, "utf8") };
}

/**
 * etcd's strict reconfiguration check: a change that would leave the cluster without a quorum of voters that are
 * up is refused (removing a live voter while another is down, adding a voter to a cluster short of members).
 */
export class UnhealthyClusterError extends MvccError {
  constructor() {
    super("VIGIE_ERR_UNHEALTHY_CLUSTER", "etcdserver: unhealthy cluster", GrpcCode.Unavailable);
  }
}

/** A voter counts as up when the leader heard from it this recently (more than an election timeout). */
const ACTIVE_WINDOW_MS = 1500;

/** The leader's refusals of a change, as the errors the client API answers; undefined: try again. */
function leaderRefusal(error: RemotePeerError): Error | undefined {
  switch (error.code) {
    case "VIGIE_ERR_MEMBER_NOT_FOUND":
      return new MemberNotFoundError();
    case "VIGIE_ERR_NOT_LEARNER":
      return new NotLearnerError();
    case "VIGIE_ERR_LEARNER_NOT_READY":
      return new LearnerNotReadyError();
    case "VIGIE_ERR_PEER_URL_EXISTS":
      return new PeerUrlExistsError();
    case "VIGIE_ERR_UNHEALTHY_CLUSTER":
      return new UnhealthyClusterError();
    case "VIGIE_ERR_RECONFIGURATION":
      return new ReconfigurationError(error.message.replace(/^etcdserver: re-configuration failed: /, ""));
    default:
      return undefined;
  }
}

export interface MembershipOptions {
  clusterId: number;
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
  private autoPromoting = false;
  private readonly lastActiveMs = new Map<NodeId, number>();

  constructor(private readonly options: MembershipOptions) {}

  async add(peerURLs: string[], isLearner: boolean): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
    const { table } = this.options;
    // A quick answer from the local table; the leader checks again where it counts (see change).
    for (const url of peerURLs) if (table.byPeerUrl(url) !== undefined) throw new PeerUrlExistsError();
    const id = randomMemberId();
    const context = encodeMemberContext({ name: "", peerURLs, clientURLs: [] });
    await this.change({ type: isLearner ? "addLearner" : "addVoter", nodeId: id, context });
    const member = table.get(id);
    assert.ok(member !== undefined, `member ${id} missing right after its conf change applied`);
    return { member, members: table.list() };
  }

  async remove(id: number): Promise<MemberInfo[]> {
    // No quick answer from the local table here: a member that lags (a learner that caught up by snapshot and has
    // not applied its own addition yet) answered "member not found" about a member the cluster has. The leader
    // checks against its table (see refusal), as etcd validates a change where it is applied.
    await this.change({ type: "removeNode", nodeId: id, context: new Uint8Array(0) });
    // Without the removed member even where it is not applied yet (a member that removed itself, see change).
    return this.options.table.list().filter((member) => member.ID !== id);
  }

  async promote(id: number): Promise<MemberInfo[]> {
    // Only the leader tracks how far a learner got, so only the leader can refuse one that has not caught up (or
    // never started): change() hands the promotion to it, as etcd 3.4 does. It also checks that the member exists
    // and is a learner, against its own table (a lagging member's could say "not found" about a new learner).
    await this.change({ type: "promoteLearner", nodeId: id, context: new Uint8Array(0) });
    return this.options.table.list();
  }

  /**
   * Moves a member to new peer URLs (`member update`): the members then reach it there. A conf change, checked by
   * the leader against its table like an add (the member must exist, the URLs must not be another member's), so
   * it is ordered with the other changes and every replica applies it at the same point of the log.
   */
  async update(id: number, peerURLs: string[]): Promise<MemberInfo[]> {
    const context = encodeMemberContext({ name: "", peerURLs, clientURLs: [] });
    await this.change({ type: "updateNode", nodeId: id, context });
    return this.options.table.list();
  }

  /** Serves the changes handed over by followers and learners (see change). */
  serve(): void {
    this.options.transport.handle(CHANGE_RPC, async (body) => {
      if (!this.options.isLeader()) throw new NotLeaderHereError();
      await this.change(fromWire(body));
      return {};
    });
  }

  /**
   * Carries out a conf change and resolves once it is applied on this replica. Only the leader proposes one, and
   * checks it against the member table in the same turn of the driver loop that proposes it: the core accepts a
   * single unapplied conf change at a time, so that table already holds every change before this one. Checked
   * anywhere else, two adds of one peer URL at the same moment (twice through the leader, or through two members)
   * both passed and made two members sharing the URL; and a change a follower proposed itself was dropped
   * silently by a leader busy with another one (the caller waited its whole timeout). A follower or learner hands
   * its change to the leader over the peer transport, as etcd 3.4 forwards member calls to its leader.
   */
  private async change(cc: ConfChange, extraCheck?: () => Error | undefined): Promise<void> {
    // ID 0 is nobody (etcd answers "member not found"); the core refuses to propose it.
    if (!(cc.nodeId > 0)) throw new MemberNotFoundError();
    const key = `${cc.type}:${cc.nodeId}`;
    if (this.waits.has(key)) throw new ReconfigurationError("the same change is already in progress");
    // Waited for before asking: the entry may be applied here before the leader's answer arrives.
    const applied = this.waits.wait(key, this.options.requestTimeoutMs);
    applied.catch(() => {});
    try {
      const proposed = this.options.isLeader() && (await this.proposeAsLeader(cc, extraCheck));
      // A change with its own check (the automatic promotion) is the leader's alone: the next leader decides anew.
      if (!proposed && extraCheck !== undefined) throw new ReconfigurationError("this member no longer leads");
      if (!proposed) {
        // Applied here means committed: done, whether or not the leader's answer ever comes. A leader asked (through
        // this member) to remove itself stops talking to the cluster once it applied its removal, and its answer
        // was lost: the caller waited its whole timeout for a change every member had applied.
        const handed = this.handToLeader(cc);
        handed.catch(() => {});
        try {
          await Promise.race([handed, applied]);
        } catch (error) {
          // Elected while it waited to hand the change over (the leader it asked died): it proposes it itself. Asking
          // "the leader" over the transport would have failed until the deadline: the client waited 5 s, then
          // retried (seen when a learner joined through a follower as the leader was killed).
          if (!(error instanceof LeaderIsHereError)) throw error;
          if (!(await this.proposeAsLeader(cc, extraCheck))) throw new LeaderChangedError();
        }
        // A member asked to remove itself may never apply its removal: the leader stops replicating to it once it
        // applied the removal, which its answer says it did. This member learns it from its peers (the removed-
        // member probe); waiting here would only time out.
        if (cc.type === "removeNode" && cc.nodeId === this.options.memberId) this.waits.resolve(key, undefined);
      }
    } catch (error) {
      this.waits.reject(key, mapDropped(error));
    }
    await applied;
  }

  /** Proposes `cc` if it passes the checks, retrying while another change is pending; false: not the leader. */
  private async proposeAsLeader(cc: ConfChange, extraCheck?: () => Error | undefined): Promise<boolean> {
    const deadlineMs = Date.now() + this.options.requestTimeoutMs;
    for (;;) {
      let leading = true;
      try {
        await this.options.run((raft) => {
          leading = raft.role === "leader";
          if (!leading) return;
          const refused = this.refusal(cc) ?? extraCheck?.();
          if (refused !== undefined) throw refused;
          raft.proposeConfChange(cc);
        });
        return leading;
      } catch (error) {
        const retry =
          isNoLeader(error) || (error instanceof ProposalDroppedError && error.reason === "confChangePending");
        if (!retry || Date.now() + 50 >= deadlineMs || !this.options.active()) throw error;
        await sleep(50);
      }
    }
  }

  private async handToLeader(cc: ConfChange): Promise<void> {
    await callLeader(
      {
        transport: this.options.transport,
        leader: () => this.options.leader(),
        self: this.options.memberId,
        timeoutMs: this.options.requestTimeoutMs,
      },
      CHANGE_RPC,
      toWire(cc),
      leaderRefusal,
    );
  }

  /** Why the leader refuses `cc` given the applied member table, or undefined. Runs inside the driver loop. */
  private refusal(cc: ConfChange): Error | undefined {
    const { table } = this.options;
    const member = table.get(cc.nodeId);
    switch (cc.type) {
      case "addVoter":
      case "addLearner": {
        if (member !== undefined || table.isRemoved(cc.nodeId))
          return new ReconfigurationError("member ID already exist");
        const { peerURLs } = decodeMemberContext(cc.context);
        if (peerURLs.some((url) => table.byPeerUrl(url) !== undefined)) return new PeerUrlExistsError();
        return this.wouldLoseQuorum(cc) ? new UnhealthyClusterError() : undefined;
      }
      case "removeNode":
        if (member === undefined) return new MemberNotFoundError();
        return this.wouldLoseQuorum(cc) ? new UnhealthyClusterError() : undefined;
      case "promoteLearner":
        if (member === undefined) return new MemberNotFoundError();
        if (!member.isLearner) return new NotLearnerError();
        return this.learnerCaughtUp(cc.nodeId, false) ? undefined : new LearnerNotReadyError();
      case "updateNode": {
        if (member === undefined) return new MemberNotFoundError();
        const { peerURLs } = decodeMemberContext(cc.context);
        const taken = peerURLs.some((url) => {
          const owner = table.byPeerUrl(url);
          return owner !== undefined && owner.ID !== cc.nodeId;
        });
        return taken ? new PeerUrlExistsError() : undefined;
      }
    }
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

  /**
   * A member removed while it could not hear of it (cut off from the others, or a learner removed before its
   * snapshot arrived) never applies its own removal: it would go on serving stale reads and call itself healthy,
   * since the others merely refuse its messages. Now and then a follower or learner asks one peer (the leader if
   * it knows one) whether that peer lists it as removed, as etcd's peers tell a removed member it is gone.
   */
  async checkNotRemoved(): Promise<void> {
    if (this.options.isLeader() || !this.options.active()) return;
    const { table, memberId, clusterId } = this.options;
    const others = table.list().filter((m) => m.ID !== memberId && m.peerURLs[0] !== undefined);
    const peer = table.get(this.options.leader()) ?? others[Math.floor(Math.random() * others.length)];
    const peerUrl = peer?.ID === memberId ? undefined : peer?.peerURLs[0];
    if (peerUrl === undefined) return;
    const answer = await getProbe(peerUrl).catch(() => undefined);
    if (answer?.clusterId !== clusterId || !Array.isArray(answer.removed) || !answer.removed.includes(memberId)) return;
    this.options.logger.warn({ peer: peerUrl }, "a peer lists this member as removed from the cluster");
    this.options.onRemoved();
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

  /** Leader only, every 100 ms: when each voter last answered (the core's flag is cleared every round). */
  sampleActivity(): void {
    if (!this.options.isLeader()) {
      this.lastActiveMs.clear();
      return;
    }
    const nowMs = Date.now();
    for (const [id, progress] of this.options.raft.status().progress) {
      if (progress.recentActive) this.lastActiveMs.set(id, nowMs);
    }
  }

  /**
   * Whether `cc` leaves fewer voters up (heard from by the leader lately) than a quorum of the voters after it, as
   * etcd 3.4's strict reconfiguration check refuses: removing a live voter while another is down, adding a voter
   * (not up yet) to a cluster with voters down. The 1 → 2 step stays allowed, as in etcd. Unlike etcd, which
   * refuses any add while a voter is unreachable, learners may always be added: sidecars join as learners, and
   * must be able to while a voter is down.
   */
  private wouldLoseQuorum(cc: ConfChange): boolean {
    const { voters } = this.options.raft.status();
    let after: NodeId[];
    if (cc.type === "addVoter") {
      if (voters.length === 1) return false;
      after = [...voters, cc.nodeId];
    } else if (cc.type === "removeNode" && voters.includes(cc.nodeId)) {
      after = voters.filter((id) => id !== cc.nodeId);
    } else {
      return false;
    }
    const heard = this.heardLately();
    const isUp = (id: NodeId) => id === this.options.memberId || heard.has(id);
    return after.filter(isUp).length < Math.floor(after.length / 2) + 1;
  }

  /**
   * Leader only: the members it heard from within ACTIVE_WINDOW_MS, with when. Sampled now too: a leader elected
   * less than a sampling period ago has no samples yet (the core marks every peer active when it takes over), and
   * just after a check-quorum round the core's flags say nothing yet.
   */
  private heardLately(): Map<NodeId, number> {
    this.sampleActivity();
    const nowMs = Date.now();
    const heard = new Map<NodeId, number>();
    for (const [id, atMs] of this.lastActiveMs) if (nowMs - atMs <= ACTIVE_WINDOW_MS) heard.set(id, atMs);
    return heard;
  }

  /**
   * etcd's rule: the learner holds at least 90% of the leader's log (and something at all). `requireActive` adds
   * that it answered lately, for the automatic choice only: the core clears that flag at every check-quorum round
   * (each election timeout) and sets it again on the learner's next answer, so an explicit `member promote`
   * checked on it could be refused for a learner in perfect health when asked just after a round.
   */
  private learnerCaughtUp(id: number, requireActive: boolean): boolean {
    const st = this.options.raft.status();
    const progress = st.progress.get(id);
    const leaderMatch = st.progress.get(this.options.memberId)?.match ?? st.lastIndex;
    if (progress === undefined || (requireActive && !progress.recentActive)) return false;
    return progress.match > 0 && progress.match >= leaderMatch * 0.9;
  }

  /**
   * Leader only: promote one caught-up learner while the cluster has fewer voters than wanted. One promotion at a
   * time, and the voter count is checked again in the turn that proposes it: a promotion still in flight when the
   * next timer fired used to be followed by a second one, one voter more than --voters.
   */
  promoteCaughtUpLearner(): void {
    if (this.autoPromoting || !this.options.isLeader() || !this.options.active()) return;
    const st = this.options.raft.status();
    if (st.voters.length >= this.options.wantedVoters || st.learners.length === 0) return;
    const candidate = st.learners.find(
      (id) => this.learnerCaughtUp(id, true) && this.options.table.get(id)?.name !== "",
    );
    if (candidate === undefined) return;
    this.options.logger.info(
      { member: candidate.toString(16), voters: st.voters.length, wanted: this.options.wantedVoters },
      "promoting a caught-up learner",
    );
    this.autoPromoting = true;
    const enoughVoters = () =>
      this.options.raft.status().voters.length >= this.options.wantedVoters
        ? new ReconfigurationError("the cluster has the voters it wants")
        : undefined;
    this.change({ type: "promoteLearner", nodeId: candidate, context: new Uint8Array(0) }, enoughVoters)
      .catch((error: unknown) =>
        this.options.logger.warn({ err: (error as Error).message }, "automatic promotion failed"),
      )
      .finally(() => {
        this.autoPromoting = false;
      });
  }

  /**
   * A leader that is shutting down hands leadership to its most up-to-date voter first, so clients see a
   * handover of a few milliseconds instead of an election timeout. Best effort, bounded by `waitMaxMs`.
   */
  async handOffLeadership(waitMaxMs: number): Promise<void> {
    if (!this.options.isLeader() || !this.options.active()) return;
    const { memberId, logger } = this.options;
    const st = this.options.raft.status();
    if (st.voters.length <= 1) return;
    // Up by the sampled activity, not the core's flag alone: the core clears that flag at every check-quorum round
    // and sets it again on each peer's next answer, so a shutdown landing in between saw no live voter at all and
    // left the cluster to an election timeout.
    const heard = this.heardLately();
    // The longest log first; among equal logs, the voter heard from last (one that just died still counts as up).
    let best: NodeId = 0;
    let bestMatch = -1;
    let bestHeardMs = 0;
    for (const id of st.voters) {
      const progress = st.progress.get(id);
      const heardMs = heard.get(id);
      if (id === memberId || progress === undefined || heardMs === undefined) continue;
      if (progress.match > bestMatch || (progress.match === bestMatch && heardMs > bestHeardMs)) {
        best = id;
        bestMatch = progress.match;
        bestHeardMs = heardMs;
      }
    }
    if (best === 0) {
      logger.warn("shutting down as leader with no other voter up: the cluster elects one after a timeout");
      return;
    }
    logger.info({ to: best.toString(16) }, "shutting down: handing leadership over");
    try {
      await this.options.run((raft) => raft.transferLeadership(best));
    } catch (error) {
      logger.warn({ to: best.toString(16), err: (error as Error).message }, "handing leadership over failed");
      return;
    }
    const deadlineMs = Date.now() + waitMaxMs;
    // Done once this replica follows the new leader (the transferee's first append reaches it).
    const following = () => this.options.leader() !== 0 && this.options.leader() !== memberId;
    while (!following() && Date.now() < deadlineMs) await sleep(5);
    if (!following()) logger.warn({ to: best.toString(16), waitMaxMs }, "handing leadership over did not finish");
  }

  rejectAll(error: Error): void {
    this.waits.rejectAll(error);
  }
}
