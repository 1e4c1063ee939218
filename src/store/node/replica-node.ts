// The running replica as the client API sees it (the `Replica` seam): proposals matched to their applied result,
// linearizable read barriers, leader-local lease operations (forwarded to the leader over the peer transport) and
// membership changes. It reacts to what the driver applies; the driver owns the core.
import assert from "node:assert/strict";
import type { Logger } from "../../log.js";
import { randomMemberId } from "../cluster/ids.js";
import { encodeMemberContext, type MemberAttributes, type MemberTable } from "../cluster/members.js";
import {
  type Command,
  type CommandResponseMap,
  type CommandType,
  encodeCommand,
  type LeaseKeepAliveResponse,
  type LeaseLeasesResponse,
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
  MAX_REQUEST_BYTES,
} from "../mvcc/commands.js";
import { RequestTooLargeError } from "../mvcc/errors.js";
import type { ApplyResult, KvStore } from "../mvcc/kv-store.js";
import { ProposalDroppedError } from "../raft/errors.js";
import type { RaftNode } from "../raft/raft-node.js";
import type { ConfChange, ConfState, Entry, NodeId, SoftState } from "../raft/types.js";
import type { MemberInfo, Replica, ReplicaHeader, ReplicaStatus } from "../replica.js";
import type { PeerTransport } from "../transport/transport.js";
import type { RaftDriver } from "./driver.js";
import { decodeEnvelope, ENTRY_KV, ENTRY_MEMBER_ATTRIBUTES, type EntryKind, encodeEnvelope } from "./envelope.js";
import {
  LeaderChangedError,
  LearnerNotReadyError,
  MemberNotFoundError,
  MemberRemovedError,
  NoLeaderError,
  NotLearnerError,
  PeerUrlExistsError,
  ReconfigurationError,
  RequestTimeoutError,
  ServerStoppedError,
  TooManyRequestsError,
} from "./errors.js";
import { LeaseForwarder } from "./lease-forwarder.js";
import type { NodeMetrics } from "./metrics.js";
import { ReadBarrier, WaitTable } from "./requests.js";

export interface ReplicaNodeOptions {
  name: string;
  clusterId: number;
  memberId: number;
  clientUrls: string[];
  kv: KvStore;
  raft: RaftNode;
  members: MemberTable;
  transport: PeerTransport;
  logger: Logger;
  metrics: NodeMetrics;
  requestTimeoutMs: number;
  /** How long an election can take: a new leader extends every lease by this much. */
  electionTimeoutMs: number;
  /** Voters wanted: a caught-up learner is promoted while the cluster has fewer. */
  wantedVoters: number;
  /** Bytes of state on disk (etcd's dbSize); the latest snapshot's size here. */
  dbSizeBytes(): number;
}

const NO_LEADER_RETRY_MS = 20;
const MAX_PENDING_PROPOSALS = 16_384;

export class ReplicaNode implements Replica {
  readonly clusterId: number;
  readonly memberId: number;
  readonly kv: KvStore;
  private driver!: RaftDriver;
  private readonly raft: RaftNode;
  private readonly memberTable: MemberTable;
  private readonly logger: Logger;
  private readonly proposals = new WaitTable<number, ApplyResult>(MAX_PENDING_PROPOSALS);
  private readonly confChanges = new WaitTable<string, void>(16);
  private readonly reads: ReadBarrier;
  private readonly leases: LeaseForwarder;
  private nextRequestId = 1;
  private leader: NodeId = 0;
  private role: SoftState["role"] = "follower";
  private removed = false;
  private stopped = false;
  private readonly revoking = new Set<number>();
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly options: ReplicaNodeOptions) {
    this.clusterId = options.clusterId;
    this.memberId = options.memberId;
    this.kv = options.kv;
    this.raft = options.raft;
    this.memberTable = options.members;
    this.logger = options.logger;
    this.reads = new ReadBarrier({
      maxWaiters: 65_536,
      roundTimeoutMs: Math.max(200, options.electionTimeoutMs / 2),
      requestReadIndex: (context) => this.driver.run((raft) => raft.readIndex(context)),
      appliedIndex: () => this.kv.appliedIndex,
      prefix: `${options.memberId.toString(36)}-`,
    });
    this.leases = new LeaseForwarder({
      kv: options.kv,
      transport: options.transport,
      isLeader: () => this.role === "leader",
      leader: () => this.leader,
      timeoutMs: options.requestTimeoutMs,
    });
    this.leases.serve();
  }

  /** Wires the driver (created after this object, since the driver's hooks point here) and starts the timers. */
  attach(driver: RaftDriver): void {
    this.driver = driver;
    this.timers.push(setInterval(() => this.revokeExpiredLeases(), 250));
    this.timers.push(setInterval(() => this.promoteCaughtUpLearner(), 500));
    this.timers.push(setInterval(() => this.reads.expire(Date.now()), 1000));
    void this.publishAttributes();
  }

  // ---- Replica ----

  header(): ReplicaHeader {
    return {
      cluster_id: this.clusterId,
      member_id: this.memberId,
      revision: this.kv.revision,
      raft_term: this.raft.term,
    };
  }

  async propose<T extends CommandType>(command: Extract<Command, { type: T }>): Promise<CommandResponseMap[T]> {
    this.kv.validate(command);
    let toPropose: Command = command;
    const generic = command as Command;
    if (generic.type === "leaseGrant" && !generic.request.ID) {
      toPropose = { type: "leaseGrant", request: { ...generic.request, ID: this.kv.leases.proposeId() } };
    }
    const payload = encodeCommand(toPropose);
    if (payload.length > MAX_REQUEST_BYTES) throw new RequestTooLargeError();
    const result = await this.proposeEntry(ENTRY_KV, payload);
    if (!result.ok) throw result.error;
    return result.response as CommandResponseMap[T];
  }

  linearizableBarrier(): Promise<void> {
    this.throwIfStopped();
    return this.reads.wait(this.options.requestTimeoutMs);
  }

  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse> {
    this.throwIfStopped();
    return this.leases.keepAlive(id);
  }

  leaseTimeToLive(request: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    this.throwIfStopped();
    return this.leases.timeToLive(request);
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    this.throwIfStopped();
    return this.kv.leaseList();
  }

  async members(): Promise<MemberInfo[]> {
    return this.memberTable.list();
  }

  async addMember(peerURLs: string[], isLearner: boolean): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
    for (const url of peerURLs) if (this.memberTable.byPeerUrl(url) !== undefined) throw new PeerUrlExistsError();
    const id = randomMemberId();
    const context = encodeMemberContext({ name: "", peerURLs, clientURLs: [] });
    await this.changeMembership({ type: isLearner ? "addLearner" : "addVoter", nodeId: id, context });
    const member = this.memberTable.get(id);
    assert.ok(member !== undefined, `member ${id} missing right after its conf change applied`);
    return { member, members: this.memberTable.list() };
  }

  async removeMember(id: number): Promise<MemberInfo[]> {
    if (!this.memberTable.has(id)) throw new MemberNotFoundError();
    await this.changeMembership({ type: "removeNode", nodeId: id, context: new Uint8Array(0) });
    return this.memberTable.list();
  }

  async promoteMember(id: number): Promise<MemberInfo[]> {
    const member = this.memberTable.get(id);
    if (member === undefined) throw new MemberNotFoundError();
    if (!member.isLearner) throw new NotLearnerError();
    if (this.role === "leader" && !this.learnerCaughtUp(id)) throw new LearnerNotReadyError();
    await this.changeMembership({ type: "promoteLearner", nodeId: id, context: new Uint8Array(0) });
    return this.memberTable.list();
  }

  status(): ReplicaStatus {
    const st = this.raft.status();
    const isLearner = st.learners.includes(this.memberId);
    return {
      header: this.header(),
      version: "3.4.0",
      dbSize: this.options.dbSizeBytes(),
      leader: st.leader,
      raftIndex: st.commit,
      raftTerm: st.term,
      raftAppliedIndex: this.kv.appliedIndex,
      isLearner,
      errors: this.removed ? ["this member was removed from the cluster"] : [],
      name: this.options.name,
      role: isLearner ? "learner" : st.role,
    };
  }

  // ---- driver hooks ----

  onSoftState(state: SoftState): void {
    if (state.leader !== this.leader) {
      this.options.metrics.leaderChanges.inc();
      this.logger.info({ leader: state.leader.toString(16), role: state.role, term: this.raft.term }, "leader changed");
      if (this.leader !== 0) {
        // Proposals handed to the old leader are probably lost with it: fail them now ("leader changed", as etcd
        // says) so clients retry at once instead of waiting for the request timeout. Their outcome is unknown
        // (they may still commit), exactly as after a timeout.
        const failed = this.proposals.size;
        this.proposals.rejectAll(new LeaderChangedError());
        if (failed > 0) this.options.metrics.proposalsFailed.inc(failed);
      }
      this.reads.retryNow();
    }
    const wasLeader = this.role === "leader";
    this.leader = state.leader;
    this.role = state.role;
    this.options.metrics.isLeader.set(state.role === "leader" ? 1 : 0);
    if (state.role === "leader" && !wasLeader) this.kv.promoteLeases(this.options.electionTimeoutMs);
    if (state.role !== "leader" && wasLeader) this.kv.demoteLeases();
  }

  onEntry(entry: Entry): void {
    const envelope = decodeEnvelope(entry.data);
    if (envelope.kind === ENTRY_KV) {
      const result = this.kv.applyEntry(envelope.payload, entry.index);
      if (envelope.origin === this.memberId) this.proposals.resolve(envelope.requestId, result);
      return;
    }
    const attributes = JSON.parse(Buffer.from(envelope.payload).toString("utf8")) as MemberAttributes;
    this.memberTable.applyAttributes(envelope.origin, attributes);
    this.kv.markApplied(entry.index);
    if (envelope.origin === this.memberId) {
      this.proposals.resolve(envelope.requestId, { ok: true, response: { header: { revision: this.kv.revision } } });
    }
  }

  onConfChange(cc: ConfChange, _confState: ConfState): void {
    const member = this.memberTable.get(cc.nodeId);
    if (cc.type === "removeNode") {
      this.options.transport.removePeer(cc.nodeId);
      if (cc.nodeId === this.memberId) this.onRemoved();
    } else if (member !== undefined && member.peerURLs[0] !== undefined) {
      this.options.transport.setPeer(cc.nodeId, member.peerURLs[0]);
    }
    this.logger.info({ change: cc.type, member: cc.nodeId.toString(16) }, "membership changed");
    this.confChanges.resolve(`${cc.type}:${cc.nodeId}`, undefined);
  }

  onRestored(): void {
    for (const member of this.memberTable.list()) {
      if (member.peerURLs[0] !== undefined) this.options.transport.setPeer(member.ID, member.peerURLs[0]);
    }
  }

  onReadState(context: string, index: number): void {
    this.reads.onReadState(context, index);
  }

  onApplied(index: number): void {
    this.reads.onApplied(index);
  }

  // ---- internals ----

  private throwIfStopped(): void {
    if (this.removed) throw new MemberRemovedError();
    if (this.stopped || this.driver.isStopped) throw new ServerStoppedError();
  }

  /** Proposes an entry and resolves with its apply result on this replica; retries while there is no leader. */
  private async proposeEntry(kind: EntryKind, payload: Uint8Array): Promise<ApplyResult> {
    this.throwIfStopped();
    const requestId = this.nextRequestId++;
    const data = encodeEnvelope(kind, this.memberId, requestId, payload);
    const applied = this.proposals.wait(requestId, this.options.requestTimeoutMs);
    applied.catch(() => {});
    const deadlineMs = Date.now() + this.options.requestTimeoutMs;
    for (;;) {
      try {
        await this.driver.run((raft) => raft.propose(data));
        break;
      } catch (error) {
        if (isNoLeader(error) && Date.now() + NO_LEADER_RETRY_MS < deadlineMs && !this.stopped) {
          await sleep(NO_LEADER_RETRY_MS);
          continue;
        }
        this.options.metrics.proposalsFailed.inc();
        this.proposals.reject(requestId, mapDropped(error));
        break;
      }
    }
    try {
      return await applied;
    } catch (error) {
      if (error instanceof RequestTimeoutError) this.options.metrics.proposalsFailed.inc();
      throw error;
    }
  }

  private async changeMembership(cc: ConfChange): Promise<void> {
    this.throwIfStopped();
    const key = `${cc.type}:${cc.nodeId}`;
    if (this.confChanges.has(key)) throw new ReconfigurationError("the same change is already in progress");
    const applied = this.confChanges.wait(key, this.options.requestTimeoutMs);
    applied.catch(() => {});
    const deadlineMs = Date.now() + this.options.requestTimeoutMs;
    for (;;) {
      try {
        await this.driver.run((raft) => raft.proposeConfChange(cc));
        break;
      } catch (error) {
        const retry =
          isNoLeader(error) || (error instanceof ProposalDroppedError && error.reason === "confChangePending");
        if (retry && Date.now() + 50 < deadlineMs && !this.stopped) {
          await sleep(50);
          continue;
        }
        this.confChanges.reject(key, mapDropped(error));
        break;
      }
    }
    await applied;
  }

  /** Tells the cluster this member's name and client URLs (replicated, like etcd's publish), once per start. */
  private async publishAttributes(): Promise<void> {
    const attributes: MemberAttributes = { name: this.options.name, clientURLs: this.options.clientUrls };
    const payload = Buffer.from(JSON.stringify(attributes));
    while (!this.stopped && !this.removed) {
      const current = this.memberTable.get(this.memberId);
      if (
        current !== undefined &&
        current.name === attributes.name &&
        current.clientURLs.join(",") === attributes.clientURLs.join(",")
      ) {
        return;
      }
      try {
        await this.proposeEntry(ENTRY_MEMBER_ATTRIBUTES, payload);
        return;
      } catch (error) {
        this.logger.debug({ err: (error as Error).message }, "publishing member attributes failed; retrying");
        await sleep(500);
      }
    }
  }

  /** Leader only: propose a revoke for every lease whose deadline passed (once per lease until applied). */
  private revokeExpiredLeases(): void {
    if (this.role !== "leader" || this.stopped) return;
    for (const id of this.kv.expiredLeases()) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      this.propose({ type: "leaseRevoke", request: { ID: id } })
        .catch((error: unknown) =>
          this.logger.debug({ lease: id, err: (error as Error).message }, "lease revoke failed"),
        )
        .finally(() => this.revoking.delete(id));
    }
  }

  private learnerCaughtUp(id: number): boolean {
    const st = this.raft.status();
    const progress = st.progress.get(id);
    const leaderMatch = st.progress.get(this.memberId)?.match ?? st.lastIndex;
    if (progress === undefined || !progress.recentActive) return false;
    return progress.match > 0 && progress.match >= leaderMatch * 0.9;
  }

  /** Leader only: promote one caught-up learner while the cluster has fewer voters than wanted. */
  private promoteCaughtUpLearner(): void {
    if (this.role !== "leader" || this.stopped) return;
    const st = this.raft.status();
    if (st.voters.length >= this.options.wantedVoters || st.learners.length === 0) return;
    const candidate = st.learners.find((id) => this.learnerCaughtUp(id) && this.memberTable.get(id)?.name !== "");
    if (candidate === undefined) return;
    this.logger.info(
      { member: candidate.toString(16), voters: st.voters.length, wanted: this.options.wantedVoters },
      "promoting a caught-up learner",
    );
    this.changeMembership({ type: "promoteLearner", nodeId: candidate, context: new Uint8Array(0) }).catch(
      (error: unknown) => this.logger.warn({ err: (error as Error).message }, "automatic promotion failed"),
    );
  }

  private onRemoved(): void {
    if (this.removed) return;
    this.removed = true;
    this.logger.warn("this member was removed from the cluster; it stops replicating (rejoin with a new data dir)");
    // Give the core a moment to send what it owes (a removed leader's last heartbeats), then stop stepping.
    setTimeout(() => this.driver.stop(), 1000).unref();
    this.proposals.rejectAll(new MemberRemovedError());
    this.reads.rejectAll(new MemberRemovedError());
  }

  /**
   * A leader that is shutting down hands leadership to its most up-to-date voter first, so clients see a
   * handover of a few milliseconds instead of an election timeout. Best effort, bounded by `waitMaxMs`.
   */
  async handOffLeadership(waitMaxMs: number): Promise<void> {
    if (this.role !== "leader" || this.stopped || this.removed) return;
    const st = this.raft.status();
    let best: NodeId = 0;
    let bestMatch = -1;
    for (const id of st.voters) {
      const match = st.progress.get(id)?.match ?? -1;
      if (id !== this.memberId && st.progress.get(id)?.recentActive && match > bestMatch) {
        best = id;
        bestMatch = match;
      }
    }
    if (best === 0) return;
    this.logger.info({ to: best.toString(16) }, "shutting down: handing leadership over");
    try {
      await this.driver.run((raft) => raft.transferLeadership(best));
    } catch {
      return;
    }
    const deadlineMs = Date.now() + waitMaxMs;
    // Done once this replica follows the new leader (the transferee's first append reaches it).
    while ((this.leader === 0 || this.leader === this.memberId) && Date.now() < deadlineMs) await sleep(5);
  }

  /** Stops timers and fails every waiting request. */
  shutdown(): void {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    const error = new ServerStoppedError();
    this.proposals.rejectAll(error);
    this.confChanges.rejectAll(error);
    this.reads.rejectAll(error);
  }

  get currentLeader(): NodeId {
    return this.leader;
  }

  get isRemoved(): boolean {
    return this.removed;
  }
}

function isNoLeader(error: unknown): boolean {
  return error instanceof ProposalDroppedError && (error.reason === "noLeader" || error.reason === "notLeader");
}

function mapDropped(error: unknown): Error {
  if (!(error instanceof ProposalDroppedError)) return error as Error;
  switch (error.reason) {
    case "noLeader":
    case "notLeader":
      return new NoLeaderError();
    case "uncommittedLimit":
      return new TooManyRequestsError();
    case "transferInProgress":
      return new LeaderChangedError();
    case "notMember":
      return new MemberRemovedError();
    case "confChangePending":
    case "invalidConfChange":
      return new ReconfigurationError(error.message);
    default:
      return error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
