// A tiny synchronous cluster for scripted Raft scenarios: each node is a RaftNode over a MemoryStorage, driven
// exactly as the contract in types.ts says; messages are delivered only when the test says so, through filters
// that model partitions.
import assert from "node:assert/strict";
import {
  type ConfState,
  createPrng,
  decodeConfChange,
  type Entry,
  MemoryStorage,
  type Message,
  type NodeId,
  type RaftConfig,
  RaftNode,
  type ReadState,
} from "../../../src/store/raft/index.js";

export interface TestNode {
  raft: RaftNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  confState: ConfState;
  /** State machine content restored from a snapshot (applied entries come after it). */
  restored: string[];
}

export function config(id: NodeId, voters: NodeId[], overrides: Partial<RaftConfig> = {}): RaftConfig {
  return {
    id,
    voters,
    learners: [],
    electionTick: 10,
    heartbeatTick: 1,
    preVote: true,
    checkQuorum: true,
    maxSizePerMsgBytes: 1024 * 1024,
    maxInflightMsgs: 256,
    maxInflightBytes: 0,
    maxUncommittedEntriesBytes: 1 << 30,
    applied: 0,
    random: createPrng(id),
    ...overrides,
  };
}

/** A storage holding entries with the given terms at indexes 1..n (data names term and index) and a hard state. */
export function storageWith(terms: number[], term: number, vote: NodeId, commit = 0): MemoryStorage {
  const storage = new MemoryStorage();
  storage.append(
    terms.map((t, i) => ({ term: t, index: i + 1, type: "normal" as const, data: bytes(`t${t}i${i + 1}`) })),
  );
  storage.setHardState({ term, vote, commit });
  return storage;
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (data: Uint8Array): string => new TextDecoder().decode(data);

export class Cluster {
  nodes = new Map<NodeId, TestNode>();
  /** In-flight messages, delivered by deliver(). */
  queue: Message[] = [];
  /** Directed links that drop messages: "1->2". */
  cut = new Set<string>();
  /** Nodes whose messages are all dropped (both directions). */
  isolated = new Set<NodeId>();
  /** Extra loss rule for scripted scenarios (e.g. "drop appends carrying term-4 entries"). */
  dropIf: (m: Message) => boolean = () => false;
  /** Loses the first message in flight that `matches` (one lost answer, say), and nothing else. */
  loseFirst(matches: (m: Message) => boolean): void {
    let lost = false;
    this.dropIf = (m) => {
      if (lost || !matches(m)) return false;
      lost = true;
      return true;
    };
  }

  /** Rewrites a message in flight (e.g. strips entries to model a partial delivery). */
  rewrite: (m: Message) => Message = (m) => m;

  constructor(ids: NodeId[], overrides: Partial<RaftConfig> = {}, learners: NodeId[] = []) {
    for (const id of [...ids, ...learners]) this.add(id, config(id, ids, { learners, ...overrides }));
  }

  add(id: NodeId, cfg: RaftConfig, storage = new MemoryStorage()): TestNode {
    const node: TestNode = {
      raft: new RaftNode(cfg, storage),
      storage,
      applied: [],
      readStates: [],
      confState: { voters: cfg.voters, learners: cfg.learners },
      restored: [],
    };
    this.nodes.set(id, node);
    return node;
  }

  get(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    assert.ok(node !== undefined, `no node ${id}`);
    return node;
  }

  raft(id: NodeId): RaftNode {
    return this.get(id).raft;
  }

  /** Handles every pending Ready of one node the way a driver must. */
  drain(id: NodeId): void {
    const node = this.get(id);
    while (node.raft.hasReady()) {
      const rd = node.raft.ready();
      if (rd.snapshot !== null) {
        node.storage.applySnapshot(rd.snapshot);
        node.confState = rd.snapshot.metadata.confState;
        node.restored = JSON.parse(text(rd.snapshot.data)) as string[];
        node.applied = [];
      }
      node.storage.append(rd.entries);
      if (rd.hardState !== null) node.storage.setHardState(rd.hardState);
      for (const m of rd.messages) this.queue.push(m);
      for (const e of rd.committedEntries) {
        if (e.type === "confChange") node.confState = node.raft.applyConfChange(decodeConfChange(e.data));
        node.applied.push(e);
      }
      node.readStates.push(...rd.readStates);
      node.raft.advance(rd);
    }
  }

  drainAll(): void {
    for (const id of this.nodes.keys()) this.drain(id);
  }

  private dropped(m: Message): boolean {
    return this.isolated.has(m.from) || this.isolated.has(m.to) || this.cut.has(`${m.from}->${m.to}`) || this.dropIf(m);
  }

  /** Delivers messages until the network is quiet (or `maxRounds` passes). Returns how many were delivered. */
  deliver(maxRounds = 1000): number {
    let delivered = 0;
    this.drainAll();
    for (let round = 0; round < maxRounds && this.queue.length > 0; round++) {
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        if (this.dropped(m) || !this.nodes.has(m.to)) continue;
        this.get(m.to).raft.step(this.rewrite(m));
        delivered++;
        this.drain(m.to);
      }
    }
    return delivered;
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.raft(id).tick();
      this.drain(id);
    }
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of this.nodes.keys()) this.tick(id);
      this.deliver();
    }
  }

  /** Makes `id` campaign by ticking it past its election timeout while others are quiet. */
  elect(id: NodeId): void {
    const r = this.raft(id);
    for (let i = 0; i < 100 && r.role !== "leader"; i++) {
      r.tick();
      this.drain(id);
      this.deliver();
    }
    assert.equal(r.role, "leader", `node ${id} did not become leader`);
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raft.role === "leader").map((n) => n.raft.id);
  }

  propose(id: NodeId, value: string): void {
    this.raft(id).propose(bytes(value));
    this.deliver();
  }

  appliedData(id: NodeId): string[] {
    const node = this.get(id);
    const fromLog = node.applied.filter((e) => e.type === "normal" && e.data.length > 0).map((e) => text(e.data));
    return [...node.restored, ...fromLog];
  }

  /** Snapshots node `id`'s state machine at its applied index and compacts its log up to there. */
  snapshotAndCompact(id: NodeId): number {
    const node = this.get(id);
    const index = node.raft.log.applied;
    node.storage.createSnapshot(index, node.confState, bytes(JSON.stringify(this.appliedData(id))));
    node.storage.compact(index);
    return index;
  }
}
