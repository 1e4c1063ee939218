/**
 * Public types of vigie's Raft core: a pure, deterministic state machine (no I/O, no timers, no async, no
 * randomness except the injected PRNG). Everything that touches the outside world is the driver's job.
 *
 * ## Driver contract (read this before writing `src/store/node.ts`)
 *
 * Construct: `const raft = new RaftNode(config, storage)`.
 *  - `config.id` is this node (a positive safe integer; `NONE` = 0 means "nobody").
 *  - `storage` is a {@link RaftStorage} the core only READS. The driver WRITES it (after fsync), usually a
 *    {@link MemoryStorage} that mirrors the WAL (as etcd does) — rebuilt from the WAL on restart.
 *  - Bootstrap (storage empty, `config.voters` non-empty): the core writes the initial membership as committed
 *    term-1 conf-change entries 1..n (voters then learners, in id order — every initial member must get the SAME
 *    lists). They come out of the first Ready like any entries: persist them, and apply them with
 *    `applyConfChange` (a no-op for members already known). A node JOINING a running cluster passes empty
 *    `voters`/`learners` and an empty storage: it waits for the leader and learns the membership from the log it
 *    receives (or from a snapshot). It never campaigns while it is not a voter.
 *  - Restart: pass the same `config.voters`/`learners` as at bootstrap (they are only used while storage holds
 *    no snapshot). Membership = the stored snapshot's ConfState plus the conf changes in (snapshot index,
 *    `config.applied`]; later ones come back as committed entries for the driver to apply again.
 *  - `config.applied`: the index up to which the driver's state machine already holds the effect of the log
 *    (the snapshot index it restored, or 0 for a state machine rebuilt from scratch). Committed entries above it
 *    are handed out again for applying.
 *
 * Drive it from a single event loop, never concurrently:
 *  - `raft.tick()` every tick of a real clock (e.g. 100 ms; `electionTick`/`heartbeatTick` count these ticks).
 *  - `raft.step(message)` for every message received from a peer (any order, duplicates and stale ones are fine;
 *    messages whose `to` is not this node are ignored).
 *  - `raft.propose(data)`, `raft.proposeConfChange(cc)`, `raft.readIndex(context)`, `raft.transferLeadership(to)`:
 *    local requests. They throw {@link ProposalDroppedError} (`VIGIE_ERR_PROPOSAL_DROPPED`, with a `reason`) when
 *    the request cannot be accepted right now (no known leader, uncommitted tail over its limit, a transfer in
 *    progress, a conf change already pending, ...). A request accepted on a follower is FORWARDED to the leader and
 *    may still be lost in transit: the driver matches its own request ids in applied entries and times out.
 *  - After any of the calls above, `while (raft.hasReady()) { const rd = raft.ready(); ... raft.advance(rd); }`:
 *      1. If `rd.snapshot` is non-null: persist it (fsync) and `storage.applySnapshot(rd.snapshot)`; the state
 *         machine is restored from `rd.snapshot.data` (its index/term/confState are in `rd.snapshot.metadata`).
 *      2. Append `rd.entries` to the WAL and to storage (`storage.append(rd.entries)`; an append whose first index
 *         is at or below the last stored index REPLACES the stored suffix from that index on), and persist
 *         `rd.hardState` if non-null. fsync when `rd.mustSync`. Only then:
 *      3. Send `rd.messages` (best effort; a message may be dropped on any error; call
 *         `raft.reportUnreachable(to)` when a peer cannot be reached, and `raft.reportSnapshot(to, ok)` after an
 *         attempt to deliver a `snap` message).
 *      4. Apply `rd.committedEntries` in order. A `confChange` entry's data decodes with `decodeConfChange`; call
 *         `raft.applyConfChange(cc)` when applying it (returns the new {@link ConfState}; keep it for snapshots).
 *         Apply `normal` entries with non-empty data to the state machine (empty data = the leader's no-op).
 *      5. Answer reads: each `rd.readStates[i]` says "the read with this context may be served once the state
 *         machine has applied `index`".
 *      6. `raft.advance(rd)`.
 *  - Compaction: at some applied index `i` the driver serializes its state machine and calls
 *    `storage.createSnapshot(i, confState, data)` then `storage.compact(i)` (keeping a tail of entries behind for
 *    slow followers is wise). The core sends that snapshot to followers whose needed entries were compacted away.
 *  - `raft.status()` reports id, term, leader, role, commit, applied, membership and (on the leader) each peer's
 *    replication progress; `raft.counters` counts elections, snapshots sent, reads served... (for /metrics).
 *  - `reportSnapshot` matters: a peer being sent a snapshot gets nothing else until the driver reports the
 *    outcome (etcd's contract too). Report `false` when the transfer failed, `true` once delivered.
 *  - Removing the leader: once its removal is applied it stops accepting proposals (`notMember`), keeps sending
 *    heartbeats (they carry the commit index the others need to apply the removal) and transfers leadership to
 *    the most up-to-date voter; it becomes a follower when that voter takes over. A removed member's process
 *    should linger until it sees another leader: in a 2 → 1 change the survivor may still need its vote.
 *
 * Messages and entries are plain objects (numbers, booleans, strings, arrays, `Uint8Array`). The peer transport
 * sends them as binary frames (src/store/transport/frame.ts); `codec.ts` turns them into JSON and back (bytes as
 * base64) for tools and tests.
 */

/** A node id: a positive safe integer. The API layer prints ids as strings, like etcd. */
export type NodeId = number;

/** "Nobody": no leader known, no vote cast. */
export const NONE: NodeId = 0;

export type EntryType = "normal" | "confChange";

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** For `normal`: the state machine command (empty = leader no-op). For `confChange`: `encodeConfChange(cc)`. */
  readonly data: Uint8Array;
}

/**
 * Single-server membership changes. `promoteLearner` requires the node to be a learner already. `updateNode` leaves
 * the configuration as it is: it only carries new information about a member in its context (its peer URLs, like
 * etcd's ConfChangeUpdateNode), ordered in the log with the other changes.
 */
export type ConfChangeType = "addVoter" | "addLearner" | "promoteLearner" | "removeNode" | "updateNode";

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /** Opaque to the core (e.g. the new member's peer URL as UTF-8). */
  readonly context: Uint8Array;
}

/** The membership: who votes and who only replicates. The sets are disjoint. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** What must be on stable storage before any message is sent (Raft Figure 2's persistent state + commit). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The serialized state machine at `metadata.index`. */
  readonly data: Uint8Array;
}

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

export type MessageType =
  /** Follower/learner → leader: proposals forwarded (`entries`, their term/index are 0). */
  | "prop"
  /** Leader → peer: `entries` following (`index`, `logTerm`), and the leader's `commit`. */
  | "app"
  /** Peer → leader: `reject=false`: `index` is the last index now matching. `reject=true`: `index` is the
   * rejected probe, `rejectHint`/`logTerm` the follower's conflict hint for fast backtracking. */
  | "appResp"
  /** Candidate → voter: `index`/`logTerm` describe the candidate's last entry. `context` is "transfer" when the
   * election was started by a leadership transfer (voters then ignore their leader lease). */
  | "vote"
  | "voteResp"
  /** As vote/voteResp but for `term + 1` without anyone changing term (pre-vote, Raft thesis §9.6). */
  | "preVote"
  | "preVoteResp"
  /** Leader → peer: `commit` (capped at the peer's match) and `context` (read-index round, may be ""). */
  | "heartbeat"
  | "heartbeatResp"
  /** Leader → lagging peer: `snapshot`. */
  | "snap"
  /** Leader → transferee: start an election now, ignoring the election timeout. */
  | "timeoutNow"
  /** Follower → leader: a ReadIndex request with `context`; leader → follower: `readIndexResp` with `index`. */
  | "readIndex"
  | "readIndexResp"
  /** Follower → leader: please transfer leadership to the node whose id is in `index`. */
  | "transferLeader";

/**
 * Every message type, in the order of their codes in the peer frames (src/store/transport/frame.ts): append new
 * types at the end, never reorder (a code is wire format).
 */
export const MESSAGE_TYPES: readonly MessageType[] = [
  "prop",
  "app",
  "appResp",
  "vote",
  "voteResp",
  "preVote",
  "preVoteResp",
  "heartbeat",
  "heartbeatResp",
  "snap",
  "timeoutNow",
  "readIndex",
  "readIndexResp",
  "transferLeader",
];

/**
 * One wire message. Every field is always present (zero values when unused) so the shape is stable for the
 * encoders and fast for the engine; only `snapshot` is null when absent.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly context: string;
  readonly snapshot: Snapshot | null;
  /**
   * An empty `app` a leader sends right after it committed, only to carry the new commit index to a follower it
   * replicates to optimistically (progress "replicate"): the follower applies it and answers only when it rejects
   * the append. Its acceptance would tell the leader an index it already knows, or learns from the append before
   * it; answering cost every member one more message per commit (one write per follower, two reads and steps on
   * the leader, next to the client's following request). Every other append is answered, so a lost answer is
   * still found out through heartbeats and probes.
   */
  readonly commitNotice: boolean;
}

/** "A read with `context` may be served once `index` is applied" (ReadIndex, Raft thesis §6.4). */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

/** Volatile state worth telling the driver about when it changes. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** One batch of work for the driver; see the contract at the top of this file for the order of handling. */
export interface Ready {
  /** Non-null when leader or role changed since the previous Ready. Nothing to persist. */
  readonly softState: SoftState | null;
  /** Non-null when it changed: persist before sending `messages`. */
  readonly hardState: HardState | null;
  /** Entries to append to stable storage (may replace a stored suffix) before sending `messages`. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader: persist and restore the state machine from it. */
  readonly snapshot: Snapshot | null;
  /** Committed entries to apply in order (all are already on stable storage or in `entries`). */
  readonly committedEntries: readonly Entry[];
  /** Send only after `entries`, `hardState` and `snapshot` are durable. */
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** True when `hardState.term`/`vote`, `entries` or `snapshot` changed, or when the new commit index covers a
   * membership change in `committedEntries`: fsync is then required (a commit index alone needs none). */
  readonly mustSync: boolean;
}

/**
 * What the core reads from stable storage (like etcd's `Storage`). Indices are 1-based; index 0 / term 0 is the
 * empty log's sentinel. `firstIndex()` is the first index still available (snapshot index + 1).
 */
export interface RaftStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at least one if lo < hi, stopping before `maxBytes` is exceeded. Throws
   * {@link CompactedError} when lo < firstIndex(); lo/hi above lastIndex()+1 is a programmer error. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i for firstIndex()-1 <= i <= lastIndex(); throws {@link CompactedError} below that. */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot (index 0 when there is none yet). */
  snapshot(): Snapshot;
}

/** The injected randomness: a uniform float in [0, 1). Seed it (see `createPrng`) for reproducible runs. */
export type Random = () => number;

export interface RaftConfig {
  readonly id: NodeId;
  /** Bootstrap membership, used only when storage holds no ConfState (see the contract above). */
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** A follower campaigns after a random timeout in [electionTick, 2*electionTick) ticks without a leader. */
  readonly electionTick: number;
  /** The leader sends heartbeats every `heartbeatTick` ticks; must be < electionTick. */
  readonly heartbeatTick: number;
  /** Pre-vote (thesis §9.6): a partitioned node cannot disrupt the cluster by bumping terms. */
  readonly preVote: boolean;
  /** The leader steps down when it has not heard from a quorum within an election timeout; followers then also
   * ignore vote requests while they heard from a leader recently (leader lease for disruption prevention). */
  readonly checkQuorum: boolean;
  /** Upper bound on the entry bytes of one `app` message (at least one entry is always sent). */
  readonly maxSizePerMsgBytes: number;
  /** Max `app` messages in flight (unacknowledged) per peer while replicating. */
  readonly maxInflightMsgs: number;
  /** Max entry bytes in flight per peer (0 = no limit beyond maxInflightMsgs). */
  readonly maxInflightBytes: number;
  /** The leader drops proposals while the uncommitted tail of its log exceeds this many data bytes. */
  readonly maxUncommittedEntriesBytes: number;
  /** Index already applied by the state machine when the node starts (0 for a fresh node). */
  readonly applied: number;
  readonly random: Random;
}

/** Replication progress of one peer, seen from the leader. */
export interface PeerProgress {
  readonly match: number;
  readonly next: number;
  /** probe: find the match index one message at a time; replicate: pipeline; snapshot: wait for a snapshot. */
  readonly state: "probe" | "replicate" | "snapshot";
  readonly isLearner: boolean;
  readonly recentActive: boolean;
  readonly inflightMsgs: number;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly leader: NodeId;
  readonly role: Role;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Non-empty only on the leader (includes the leader itself). */
  readonly progress: ReadonlyMap<NodeId, PeerProgress>;
  readonly leadTransferee: NodeId;
}
