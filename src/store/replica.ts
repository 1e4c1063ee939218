// The seam between the client API (src/store/server/, the etcd v3 JSON gateway) and the running replica
// (src/store/node.ts: Raft driver + WAL + MVCC + peer transport). The server only ever talks to a `Replica`,
// so it does not know whether it is a voter, a learner or a single dev node, nor where the leader is.
import type {
  Command,
  CommandResponseMap,
  CommandType,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
} from "./mvcc/commands.js";

/** etcd's `ResponseHeader`; ids are safe integers here and printed as decimal strings on the wire. */
export interface ReplicaHeader {
  cluster_id: number;
  member_id: number;
  revision: number;
  raft_term: number;
}

/** etcd's `Member`. `name` is empty for a member added but not started yet, like etcd. */
export interface MemberInfo {
  ID: number;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** What `/v3/maintenance/status` and `vigie status` show for this member. */
export interface ReplicaStatus {
  header: ReplicaHeader;
  version: string;
  dbSize: number;
  leader: number;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  errors: string[];
  /** vigie extras (not in etcd's response; the gateway may omit them): this member's name and Raft role. */
  name: string;
  role: "leader" | "follower" | "candidate" | "preCandidate" | "learner";
}

export interface Replica {
  readonly clusterId: number;
  readonly memberId: number;

  /** Header for a response built from local state right now. */
  header(): ReplicaHeader;

  /**
   * Proposes a state-changing command (put, deleteRange, txn, compaction, leaseGrant, leaseRevoke) and resolves with
   * the state machine's response once THIS replica has applied it. Works on any member: the Raft core forwards the
   * proposal to the leader. Rejects with a typed error (no leader, timeout, too large...) carrying an etcd message.
   */
  propose<T extends CommandType>(command: Extract<Command, { type: T }>): Promise<CommandResponseMap[T]>;

  /**
   * Resolves when a linearizable read may be served from this replica's state (ReadIndex confirmed by the leader and
   * applied locally). Serializable reads skip this.
   */
  linearizableBarrier(): Promise<void>;

  /** The local MVCC state machine: serve ranges and watches from it (read-only use; writes go through `propose`). */
  readonly kv: import("./mvcc/kv-store.js").KvStore;

  /** Lease keepalive is leader-local (not replicated): forwarded to the leader when this replica is not it. */
  leaseKeepAlive(id: number): Promise<LeaseKeepAliveResponse>;
  leaseTimeToLive(request: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse>;
  leaseLeases(): Promise<LeaseLeasesResponse>;

  members(): Promise<MemberInfo[]>;
  /** Adds a member (a learner when `isLearner`); resolves with it and the new member list once committed. */
  addMember(peerURLs: string[], isLearner: boolean): Promise<{ member: MemberInfo; members: MemberInfo[] }>;
  removeMember(id: number): Promise<MemberInfo[]>;
  promoteMember(id: number): Promise<MemberInfo[]>;
  /** Gives a member new peer URLs (`member update`); resolves with the member list once applied here. */
  updateMember(id: number, peerURLs: string[]): Promise<MemberInfo[]>;

  status(): ReplicaStatus;
}
