// A cluster of real RaftDrivers over in-memory storage, messages delivered on a later turn of the event loop like a
// network: for driver tests that need the loop's real ordering (stalls, who is answered first).
import { silentLogger } from "../../../src/log.js";
import { MetricsRegistry } from "../../../src/metrics.js";
import { MemberTable } from "../../../src/store/cluster/members.js";
import { KvStore } from "../../../src/store/mvcc/kv-store.js";
import { RaftDriver } from "../../../src/store/node/driver.js";
import { registerNodeMetrics } from "../../../src/store/node/metrics.js";
import type { RaftPersistence, RecoveredState } from "../../../src/store/node/persistence.js";
import { MemoryStorage } from "../../../src/store/raft/memory-storage.js";
import { RaftNode } from "../../../src/store/raft/raft-node.js";
import type { Entry, HardState, Message, Snapshot } from "../../../src/store/raft/types.js";
import { config } from "../raft/harness.js";

export const TICK_MS = 10;

/**
 * In-memory stable storage whose next save can be made to take `stallNextSaveMs` (a disk that hangs once), and whose
 * snapshot writes wait for `snapshotGate` when one is set.
 */
export class SlowOnceStorage implements RaftPersistence {
  stallNextSaveMs = 0;
  saves = 0;
  snapshotGate: Promise<void> | null = null;
  snapshotsStarted = 0;
  snapshotsSaved = 0;
  /** The size of the last snapshot handed to saveSnapshot. */
  lastSnapshotBytes = 0;
  async load(): Promise<RecoveredState> {
    return { snapshot: null, hardState: { term: 0, vote: 0, commit: 0 }, entries: [] };
  }
  async save(_hardState: HardState | null, _entries: readonly Entry[], _sync: boolean): Promise<void> {
    this.saves++;
    const stallMs = this.stallNextSaveMs;
    this.stallNextSaveMs = 0;
    if (stallMs > 0) await new Promise((resolve) => setTimeout(resolve, stallMs));
  }
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.snapshotsStarted++;
    this.lastSnapshotBytes = snapshot.data.length;
    if (this.snapshotGate !== null) await this.snapshotGate;
    this.snapshotsSaved++;
  }
  async releaseTo(_index: number): Promise<void> {}
  async close(): Promise<void> {}
}

export interface Member {
  raft: RaftNode;
  storage: MemoryStorage;
  driver: RaftDriver;
  persistence: SlowOnceStorage;
}

/** What a test may watch: every batch a member sends, and every applied index it reports. */
export interface ClusterWatch {
  onSend?: (from: number, messages: readonly Message[]) => void;
  onApplied?: (member: number, index: number) => void;
  /** Messages for which this returns true are lost on the way (a partition). */
  drop?: (message: Message) => boolean;
}

/** When every member snapshots (by default, never within a test). */
export interface ClusterSnapshotOptions {
  everyEntries: number;
  keepEntries: number;
  /** Also wait for the applied entries to hold half as many bytes as the last snapshot (off by default). */
  scalesWithSize?: boolean;
}

export function startCluster(
  electionTicks: Record<number, number>,
  watch: ClusterWatch = {},
  snapshots: ClusterSnapshotOptions = { everyEntries: 1_000_000, keepEntries: 100 },
): Map<number, Member> {
  const ids = Object.keys(electionTicks).map(Number);
  const members = new Map<number, Member>();
  for (const id of ids) {
    const storage = new MemoryStorage();
    const raft = new RaftNode(
      config(id, ids, { electionTick: electionTicks[id] ?? 10, maxUncommittedEntriesBytes: 64 * 1024 * 1024 }),
      storage,
    );
    const persistence = new SlowOnceStorage();
    const kv = new KvStore();
    const driver = new RaftDriver({
      raft,
      storage,
      persistence,
      kv,
      members: MemberTable.fromList([]),
      logger: silentLogger(),
      metrics: registerNodeMetrics(new MetricsRegistry()),
      tickMs: TICK_MS,
      snapshotPolicy: { everyEntries: snapshots.everyEntries, scalesWithSize: snapshots.scalesWithSize ?? false },
      snapshotKeepEntries: snapshots.keepEntries,
      hooks: {
        // Delivered on a later turn of the event loop, like a network.
        send: (messages: readonly Message[]) => {
          watch.onSend?.(id, messages);
          for (const m of messages) {
            if (watch.drop?.(m) !== true) setImmediate(() => members.get(m.to)?.driver.receive([m]));
          }
        },
        onSoftState: () => {},
        onEntry: (entry) => kv.markApplied(entry.index),
        onConfChange: () => {},
        onRestored: () => {},
        onReadState: () => {},
        onApplied: (index) => watch.onApplied?.(id, index),
        onFatal: (error) => {
          throw error;
        },
      },
    });
    members.set(id, { raft, storage, driver, persistence });
  }
  for (const m of members.values()) m.driver.start();
  return members;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (up to 2 s) for member 1 to lead; returns it. */
export async function awaitLeader(cluster: Map<number, Member>): Promise<Member> {
  const leader = cluster.get(1)!;
  for (let i = 0; i < 200 && leader.raft.role !== "leader"; i++) await sleep(TICK_MS);
  return leader;
}
