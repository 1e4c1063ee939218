// One simulated server: a RaftNode driven exactly as the contract in src/store/raft/types.ts says (persist →
// sync → send → apply → advance), over a SimDisk that loses unsynced writes on crash, applying to a KV state
// machine, snapshotting and compacting on its own schedule.
import assert from "node:assert/strict";
import {
  decodeConfChange,
  type Entry,
  type Message,
  type NodeId,
  type RaftConfig,
  RaftNode,
  type Ready,
} from "../store/raft/index.js";
import { SimDisk } from "./disk.js";
import { decodeCommand, type KvApplied, KvStateMachine } from "./kv.js";

/** What a node reports to the simulation while it runs. */
export interface NodeObserver {
  send(m: Message): void;
  /** A committed entry is being applied at `node` (checked against the committed-log oracle). */
  applied(node: NodeId, entry: Entry): void;
  /** A snapshot was installed at `node`: its state machine now stands at (index, term). */
  restored(node: NodeId, index: number, term: number): void;
  /** A command of a client was applied at `node` (first application or recognised duplicate). */
  commandApplied(node: NodeId, index: number, result: KvApplied): void;
  /** A read this node was asked to serve is ready at `index` with `value`. */
  /** `appliedIndex`: the state machine position the value was read at. */
  readServed(node: NodeId, context: string, value: string | null, appliedIndex: number): void;
  becameLeader(node: NodeId, term: number): void;
  /** After handling Readies on a leader: its commit index in its term. */
  leaderCommit(term: number, committed: number): void;
  removed(node: NodeId): void;
  /** The node's process died (its RaftNode's counters are passed for the run's totals). */
  crashed(node: NodeId, raft: RaftNode): void;
}

export interface SnapshotPolicy {
  /** Snapshot once this many entries were applied since the last snapshot (0 = never). */
  everyEntries: number;
  /** Entries kept behind the snapshot for slow followers. */
  keepTail: number;
}

interface WaitingRead {
  index: number;
  context: string;
  key: string;
}

export class SimNode {
  readonly disk = new SimDisk();
  raft: RaftNode | null = null;
  kv = new KvStateMachine();
  appliedIndex = 0;
  incarnation = 0;
  pausedUntil = -1;
  /** Fault injection: die in the middle of the next Ready (after persisting, before sending). */
  crashAtNextReady = false;
  /** Messages that arrived during a pause, delivered at resume (bounded like a socket buffer). */
  inbox: Message[] = [];
  /** Reads asked here, by context, with the key to read once the read index is applied. */
  readKeys = new Map<string, string>();
  private waitingReads: WaitingRead[] = [];

  constructor(
    readonly id: NodeId,
    private readonly baseConfig: Omit<RaftConfig, "id" | "applied" | "random">,
    private readonly randomFor: (incarnation: number) => () => number,
    private readonly snapshots: SnapshotPolicy,
    private readonly observer: NodeObserver,
  ) {}

  get up(): boolean {
    return this.raft !== null;
  }

  start(): void {
    if (!(this.raft === null)) assert.fail(`sim: node ${this.id} already running`);
    this.incarnation++;
    const snapshot = this.disk.live.snapshot();
    this.kv = KvStateMachine.restore(snapshot.data);
    this.appliedIndex = snapshot.metadata.index;
    const config: RaftConfig = {
      ...this.baseConfig,
      id: this.id,
      applied: this.appliedIndex,
      random: this.randomFor(this.incarnation),
    };
    this.raft = new RaftNode(config, this.disk.live);
    this.readKeys.clear();
    this.waitingReads = [];
    this.inbox = [];
  }

  /** The process dies: unsynced writes and all volatile state are gone. */
  crash(): void {
    if (this.raft !== null) this.observer.crashed(this.id, this.raft);
    this.raft = null;
    this.disk.crash();
    this.readKeys.clear();
    this.waitingReads = [];
    this.inbox = [];
  }

  /** Handles every Ready (or dies half-way through one when `crashAtNextReady` is set). */
  drain(): void {
    const raft = this.raft;
    if (raft === null) return;
    while (raft.hasReady()) {
      const rd = raft.ready();
      this.persist(rd);
      if (this.crashAtNextReady) {
        this.crashAtNextReady = false;
        this.crash();
        return;
      }
      for (const m of rd.messages) this.observer.send(m);
      if (rd.softState?.role === "leader") this.observer.becameLeader(this.id, raft.term);
      for (const e of rd.committedEntries) this.apply(raft, e);
      for (const rs of rd.readStates) {
        const key = this.readKeys.get(rs.context);
        if (key !== undefined) this.waitingReads.push({ index: rs.index, context: rs.context, key });
      }
      raft.advance(rd);
      this.serveReads();
      this.maybeSnapshot(raft);
      if (this.raft === null) return;
    }
    if (raft.role === "leader") this.observer.leaderCommit(raft.term, raft.log.committed);
  }

  private persist(rd: Ready): void {
    if (rd.snapshot !== null) {
      this.disk.applySnapshot(rd.snapshot);
      this.kv = KvStateMachine.restore(rd.snapshot.data);
      this.appliedIndex = rd.snapshot.metadata.index;
      this.observer.restored(this.id, rd.snapshot.metadata.index, rd.snapshot.metadata.term);
    }
    this.disk.append(rd.entries);
    if (rd.hardState !== null) this.disk.setHardState(rd.hardState);
    if (rd.mustSync) this.disk.sync();
  }

  private apply(raft: RaftNode, e: Entry): void {
    if (e.index !== this.appliedIndex + 1)
      assert.fail(`sim: node ${this.id} applies ${e.index} after ${this.appliedIndex}`);
    this.observer.applied(this.id, e);
    this.appliedIndex = e.index;
    if (e.type === "confChange") {
      const cc = decodeConfChange(e.data);
      raft.applyConfChange(cc);
      if (cc.type === "removeNode") this.observer.removed(cc.nodeId);
      return;
    }
    if (e.data.length === 0) return;
    this.observer.commandApplied(this.id, e.index, this.kv.apply(decodeCommand(e.data)));
  }

  private serveReads(): void {
    if (this.waitingReads.length === 0) return;
    const still: WaitingRead[] = [];
    for (const r of this.waitingReads) {
      if (r.index <= this.appliedIndex) {
        this.readKeys.delete(r.context);
        this.observer.readServed(this.id, r.context, this.kv.get(r.key), this.appliedIndex);
      } else {
        still.push(r);
      }
    }
    this.waitingReads = still;
  }

  private maybeSnapshot(raft: RaftNode): void {
    const { everyEntries, keepTail } = this.snapshots;
    if (everyEntries === 0) return;
    const last = this.disk.live.snapshot().metadata.index;
    if (this.appliedIndex - last < everyEntries) return;
    const compactTo = Math.max(last, this.appliedIndex - keepTail);
    this.disk.createSnapshotAndCompact(this.appliedIndex, raft.confState(), this.kv.serialize(), compactTo);
  }
}
