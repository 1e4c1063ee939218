// The driver after a stall (a slow fsync): ticks pile up while it waits. The followers' answers that arrived
// meanwhile are stepped before the clock catches up, and only a few ticks are caught up per turn, so check-quorum
// does not depose a leader whose followers are all there.
import { test } from "uvu";
import * as assert from "uvu/assert";
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

const TICK_MS = 10;

/** In-memory stable storage whose next save can be made to take `stallNextSaveMs` (a disk that hangs once). */
class SlowOnceStorage implements RaftPersistence {
  stallNextSaveMs = 0;
  saves = 0;
  async load(): Promise<RecoveredState> {
    return { snapshot: null, hardState: { term: 0, vote: 0, commit: 0 }, entries: [] };
  }
  async save(_hardState: HardState | null, _entries: readonly Entry[], _sync: boolean): Promise<void> {
    this.saves++;
    const stallMs = this.stallNextSaveMs;
    this.stallNextSaveMs = 0;
    if (stallMs > 0) await new Promise((resolve) => setTimeout(resolve, stallMs));
  }
  async saveSnapshot(_snapshot: Snapshot): Promise<void> {}
  async releaseTo(_index: number): Promise<void> {}
  async close(): Promise<void> {}
}

interface Member {
  raft: RaftNode;
  driver: RaftDriver;
  persistence: SlowOnceStorage;
}

function startCluster(electionTicks: Record<number, number>): Map<number, Member> {
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
      snapshotEveryEntries: 1_000_000,
      snapshotScalesWithKeys: false,
      snapshotKeepEntries: 100,
      hooks: {
        // Delivered on a later turn of the event loop, like a network.
        send: (messages: readonly Message[]) => {
          for (const m of messages) setImmediate(() => members.get(m.to)?.driver.receive([m]));
        },
        onSoftState: () => {},
        onEntry: (entry) => kv.markApplied(entry.index),
        onConfChange: () => {},
        onRestored: () => {},
        onReadState: () => {},
        onApplied: () => {},
        onFatal: (error) => {
          throw error;
        },
      },
    });
    members.set(id, { raft, driver, persistence });
  }
  for (const m of members.values()) m.driver.start();
  return members;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("a leader whose disk hangs for several election timeouts stays leader: its followers answered meanwhile", async () => {
  // Member 1 times out first (10 ticks = 100 ms); the followers wait 100 ticks, so the stall below cannot make them
  // campaign: only the leader's own check-quorum could end its term.
  const cluster = startCluster({ 1: 10, 2: 100, 3: 100 });
  try {
    const leader = cluster.get(1)!;
    for (let i = 0; i < 200 && leader.raft.role !== "leader"; i++) await sleep(TICK_MS);
    assert.is(leader.raft.role, "leader");
    const term = leader.raft.term;
    await sleep(10 * TICK_MS);

    // The next write's fsync takes 3.5 election timeouts; the entries still go out to the followers meanwhile
    // (the leader replicates while it writes) and their acknowledgements wait in the leader's inbox.
    leader.persistence.stallNextSaveMs = 35 * TICK_MS;
    const savesBefore = leader.persistence.saves;
    await leader.driver.run((raft) => raft.propose(new Uint8Array([1])));
    for (let i = 0; i < 100 && leader.persistence.saves === savesBefore; i++) await sleep(1);
    await sleep(35 * TICK_MS + 20 * TICK_MS);

    assert.is(leader.raft.role, "leader", "the leader kept its role through the stall");
    assert.is(leader.raft.term, term, "no new term");
    assert.is(cluster.get(2)!.raft.status().leader, 1);
  } finally {
    for (const m of cluster.values()) m.driver.stop();
  }
});

test.run();
