// The running replica as the client API sees it (the `Replica` seam): proposals matched to their applied result,
// linearizable read barriers, leader-local lease operations (forwarded to the leader over the peer transport) and
// membership changes (delegated to Membership). It reacts to what the driver applies; the driver owns the core.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Logger } from "../../log.js";
import type { MemberAttributes, MemberTable } from "../cluster/members.js";
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
import type { RaftNode } from "../raft/raft-node.js";
import type { ConfChange, ConfState, Entry, NodeId, SoftState } from "../raft/types.js";
import type { MemberInfo, Replica, ReplicaHeader, ReplicaStatus } from "../replica.js";
import type { PeerTransport } from "../transport/transport.js";
import type { RaftDriver } from "./driver.js";
import { decodeEnvelope, ENTRY_KV, ENTRY_MEMBER_ATTRIBUTES, type EntryKind, encodeEnvelope } from "./envelope.js";
import { LeaderChangedError, MemberRemovedError, RequestTimeoutError, ServerStoppedError } from "./errors.js";
import { LeaseForwarder } from "./lease-forwarder.js";
import { Membership } from "./membership.js";
import type { NodeMetrics } from "./metrics.js";
import { isNoLeader, mapDropped, sleep } from "./proposals.js";
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
  /** The key space keeps this many revisions of history; the leader compacts older ones (see compactHistory). */
  historyRetainRevisions: number;
  /** How often the leader checks whether history should be compacted. */
  compactionIntervalMs: number;
}

const NO_LEADER_RETRY_MS = 20;
/** How often a follower or learner asks a peer whether it was removed (see Membership.checkNotRemoved). */
const REMOVED_CHECK_INTERVAL_MS = 3000;
const MAX_PENDING_PROPOSALS = 16_384;
/** Request ids a boot may use per millisecond since the epoch before it would reach the next boot's base. */
const REQUEST_IDS_PER_MS = 1024;

/**
 * The first request id of this boot. Entries proposed by an earlier incarnation of this member may still commit
 * after a restart (they sat in the log, or with the leader): ids restarting at 1 would let such an old entry resolve
 * a new request with the old entry's result. A time-based base keeps every boot's ids above the ones before it
 * (unless a boot made more than 1024 requests per millisecond of its lifetime); the ids stay safe integers, which
 * the envelope stores exactly as float64, until the year 2248.
 */
export function firstRequestIdOfBoot(nowMs: number): number {
  const base = nowMs * REQUEST_IDS_PER_MS;
  assert.ok(
    Number.isSafeInteger(base) && base + 2 ** 32 < Number.MAX_SAFE_INTEGER,
    `request id base ${base} overflows`,
  );
  return base;
}

export class ReplicaNode implements Replica {
  readonly clusterId: number;
  readonly memberId: number;
  readonly kv: KvStore;
  private driver!: RaftDriver;
  private readonly raft: RaftNode;
  private readonly memberTable: MemberTable;
  private readonly logger: Logger;
  private readonly proposals = new WaitTable<number, ApplyResult>(MAX_PENDING_PROPOSALS);
  private readonly membership: Membership;
  private readonly reads: ReadBarrier;
  private readonly leases: LeaseForwarder;
  private nextRequestId = firstRequestIdOfBoot(Date.now());
  private leader: NodeId = 0;
  private role: SoftState["role"] = "follower";
  private removed = false;
  private stopped = false;
  private readonly revoking = new Set<number>();
  /** Set while this new leader still applies earlier terms' entries (see promoteLeasesOnceCaughtUp). */
  private leasePromotionIndex: number | undefined;
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
      // A random nonce per boot: a ReadIndex answer for a round of an earlier incarnation must never confirm a
      // round of this one (its counter starts at 1 again).
      prefix: `${options.memberId.toString(36)}-${randomBytes(8).toString("hex")}-`,
    });
    this.leases = new LeaseForwarder({
      kv: options.kv,
      transport: options.transport,
      self: options.memberId,
      isLeader: () => this.role === "leader",
      leader: () => this.leader,
      timeoutMs: options.requestTimeoutMs,
    });
    this.leases.serve();
    this.membership = new Membership({
      clusterId: options.clusterId,
      memberId: options.memberId,
      name: options.name,
      clientUrls: options.clientUrls,
      raft: options.raft,
      table: options.members,
      transport: options.transport,
      logger: options.logger,
      requestTimeoutMs: options.requestTimeoutMs,
      wantedVoters: options.wantedVoters,
      run: (op) => this.driver.run(op),
      proposeAttributes: (payload) => this.proposeEntry(ENTRY_MEMBER_ATTRIBUTES, payload),
      isLeader: () => this.role === "leader",
      leader: () => this.leader,
      active: () => !this.stopped && !this.removed,
      onRemoved: () => this.onRemoved(),
    });
    this.membership.serve();
  }

  /** Wires the driver (created after this object, since the driver's hooks point here) and starts the timers. */
  attach(driver: RaftDriver): void {
    this.driver = driver;
    this.timers.push(setInterval(() => this.revokeExpiredLeases(), 250));
    this.timers.push(setInterval(() => this.membership.promoteCaughtUpLearner(), 500));
    this.timers.push(setInterval(() => this.membership.sampleActivity(), 100));
    this.timers.push(setInterval(() => void this.membership.checkNotRemoved(), REMOVED_CHECK_INTERVAL_MS));
    this.timers.push(setInterval(() => this.reads.expire(Date.now()), 1000));
    this.timers.push(setInterval(() => this.compactHistory(), this.options.compactionIntervalMs));
    void this.membership.publishAttributes();
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

  addMember(peerURLs: string[], isLearner: boolean): Promise<{ member: MemberInfo; members: MemberInfo[] }> {
    this.throwIfStopped();
    return this.membership.add(peerURLs, isLearner);
  }

  removeMember(id: number): Promise<MemberInfo[]> {
    this.throwIfStopped();
    return this.membership.remove(id);
  }

  promoteMember(id: number): Promise<MemberInfo[]> {
    this.throwIfStopped();
    return this.membership.promote(id);
  }

  updateMember(id: number, peerURLs: string[]): Promise<MemberInfo[]> {
    this.throwIfStopped();
    return this.membership.update(id, peerURLs);
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
      // etcd 3.4 lists "no leader" among a member's errors while it knows no leader (no quorum, an election).
      // The store client moves a watch off a member whose errors mention "removed from the cluster"
      // (src/store/client/watch-stream.ts): keep those words in this text.
      errors: this.removed
        ? ["this member was removed from the cluster"]
        : st.leader === 0
          ? ["etcdserver: no leader"]
          : [],
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
    if (state.role === "leader" && !wasLeader) {
      // The core appended this term's first entry on winning: lease deadlines start once it is applied.
      this.leasePromotionIndex = this.raft.status().lastIndex;
      this.promoteLeasesOnceCaughtUp();
    }
    if (state.role !== "leader" && wasLeader) {
      this.leasePromotionIndex = undefined;
      this.kv.demoteLeases();
    }
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
    this.membership.onConfChange(cc);
  }

  onRestored(): void {
    this.membership.onRestored();
  }

  onReadState(context: string, index: number): void {
    this.reads.onReadState(context, index);
  }

  onApplied(index: number): void {
    this.reads.onApplied(index);
    this.promoteLeasesOnceCaughtUp();
  }

  /**
   * A new leader keeps lease deadlines (and answers keepalives) only once it applied every entry of the earlier
   * terms, as etcd promotes its lessor on applying the new term's first entry: before that, a lease granted just
   * before the election may not be in its table yet, and a keepalive would be told "not found" (TTL 0).
   */
  private promoteLeasesOnceCaughtUp(): void {
    if (this.leasePromotionIndex === undefined || this.kv.appliedIndex < this.leasePromotionIndex) return;
    this.leasePromotionIndex = undefined;
    this.kv.promoteLeases(this.options.electionTimeoutMs);
  }

  // ---- internals ----

  private throwIfStopped(): void {
    if (this.removed) throw new MemberRemovedError();
    if (this.stopped || this.driver.isStopped) throw new ServerStoppedError();
  }

  /**
   * Proposes an entry and resolves with its apply result on this replica; retries while there is no leader.
   * `onlyAsLeaderOfTerm`: the entry is appended only if the core still leads in that term at the moment it is
   * proposed, never forwarded to another leader (see revokeExpiredLeases).
   */
  private async proposeEntry(kind: EntryKind, payload: Uint8Array, onlyAsLeaderOfTerm?: number): Promise<ApplyResult> {
    this.throwIfStopped();
    const requestId = this.nextRequestId++;
    const data = encodeEnvelope(kind, this.memberId, requestId, payload);
    // Throws "too many requests" when the table is full: before proposing, so a failed request is never applied.
    const applied = this.proposals.wait(requestId, this.options.requestTimeoutMs);
    applied.catch(() => {});
    const deadlineMs = Date.now() + this.options.requestTimeoutMs;
    for (;;) {
      try {
        await this.driver.run((raft) => {
          if (onlyAsLeaderOfTerm !== undefined && (raft.role !== "leader" || raft.term !== onlyAsLeaderOfTerm)) {
            throw new LeaderChangedError();
          }
          raft.propose(data);
        });
        break;
      } catch (error) {
        if (isNoLeader(error) && Date.now() + NO_LEADER_RETRY_MS < deadlineMs && !this.stopped) {
          await sleep(NO_LEADER_RETRY_MS);
          continue;
        }
        this.options.metrics.proposalsFailed.inc();
        // Still no leader at the deadline (the cluster lost its quorum): etcd 3.4 answers such a write with
        // "request timed out" after waiting its timeout, not "no leader" (that one is for clients that ask to
        // require a leader); scripts and client libraries match on etcd's text.
        const timedOut = isNoLeader(error) && !this.stopped;
        this.proposals.reject(requestId, timedOut ? new RequestTimeoutError() : mapDropped(error));
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

  /**
   * Leader only: propose a revoke for every lease whose deadline passed (once per lease until applied). Deadlines
   * are this leader's: the revoke must be appended by this leader in its own term, never forwarded. A leader that
   * was frozen (SIGSTOP, a stalled disk) wakes up with every deadline passed and may run this before it hears of
   * the new leader; forwarded, its revokes would be committed by the new leader, deleting leases that clients kept
   * alive there (etcd issue 15247; etcd 3.4.28 ignores such revokes too).
   */
  private revokeExpiredLeases(): void {
    if (this.role !== "leader" || this.stopped) return;
    const term = this.raft.term;
    for (const id of this.kv.expiredLeases()) {
      if (this.revoking.has(id)) continue;
      this.revoking.add(id);
      const payload = encodeCommand({ type: "leaseRevoke", request: { ID: id } });
      this.proposeEntry(ENTRY_KV, payload, term)
        .then((result) => {
          if (!result.ok) throw result.error;
        })
        .catch((error: unknown) =>
          this.logger.debug({ lease: id, err: (error as Error).message }, "lease revoke failed"),
        )
        .finally(() => this.revoking.delete(id));
    }
  }

  /**
   * Leader only: compact history older than the retained window. The key space lives in memory, so unlike etcd
   * (whose history is on disk and compacted only on request) an agent that never compacts would grow forever.
   * Watchers resuming from a compacted revision get etcd's `compact_revision` answer and resync.
   */
  private compactHistory(): void {
    if (this.role !== "leader" || this.stopped) return;
    const target = this.kv.compactionTarget(this.options.historyRetainRevisions);
    if (target === null) return;
    this.propose({ type: "compaction", request: { revision: target } })
      .then(() => this.logger.debug({ revision: target }, "compacted history"))
      .catch((error: unknown) => this.logger.debug({ err: (error as Error).message }, "history compaction failed"));
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

  /** A leader that is shutting down hands leadership over first (see Membership.handOffLeadership). */
  handOffLeadership(waitMaxMs: number): Promise<void> {
    return this.membership.handOffLeadership(waitMaxMs);
  }

  /** Stops timers and fails every waiting request. */
  shutdown(): void {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    const error = new ServerStoppedError();
    this.proposals.rejectAll(error);
    this.membership.rejectAll(error);
    this.reads.rejectAll(error);
  }

  get currentLeader(): NodeId {
    return this.leader;
  }

  get isRemoved(): boolean {
    return this.removed;
  }
}
