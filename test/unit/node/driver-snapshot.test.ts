// The driver writes a snapshot behind its loop: while the file and its fsync are on their way, the replica keeps
// replicating, applying and answering; the in-memory log is compacted only once the snapshot is on disk.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { RaftNode } from "../../../src/store/raft/raft-node.js";
import { waitFor } from "../../helpers/ports.js";
import { awaitLeader, type Member, sleep, startCluster } from "./driver-cluster.js";

/** Runs `op` in the driver's loop, failing the test if the loop does not get to it in time (a loop held up). */
async function inLoop(member: Member, op: (raft: RaftNode) => void, timeoutMs = 2000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("the driver's loop did not run the operation in time")), timeoutMs);
  });
  try {
    await Promise.race([member.driver.run(op), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits (up to 2 s) for `done` to hold. */
function until(what: string, done: () => boolean): Promise<boolean> {
  return waitFor(what, async () => done(), 2000);
}

test("entries proposed while a snapshot is being written are committed and applied; compaction waits for the write", async () => {
  const applied = new Map<number, number>();
  const cluster = startCluster(
    { 1: 10, 2: 100, 3: 100 },
    { onApplied: (member, index) => applied.set(member, index) },
    { everyEntries: 20, keepEntries: 2 },
  );
  try {
    const leader = await awaitLeader(cluster);
    assert.is(leader.raft.role, "leader");
    let release = () => {};
    leader.persistence.snapshotGate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const propose = async (count: number) => {
      for (let i = 0; i < count; i++) await inLoop(leader, (raft) => raft.propose(new Uint8Array([i + 1])));
    };

    // Past the entries that form the cluster and elect the leader, whatever their number.
    await propose(20);
    await until("the leader to start writing a snapshot", () => leader.persistence.snapshotsStarted === 1);
    const firstIndexWhileWriting = leader.storage.firstIndex();
    const lastIndexAtSnapshot = leader.storage.lastIndex();

    // The disk holds the snapshot back; the loop must not wait for it.
    await propose(10);
    await until("the entries proposed meanwhile to be applied on the leader", () => {
      return (applied.get(1) ?? 0) >= lastIndexAtSnapshot + 10;
    });
    assert.is(leader.persistence.snapshotsSaved, 0, "the snapshot is still being written");
    assert.is(leader.persistence.snapshotsStarted, 1, "no second snapshot while one is being written");
    assert.is(leader.storage.firstIndex(), firstIndexWhileWriting, "no compaction before the snapshot is written");

    release();
    await until("the snapshot to be written", () => leader.persistence.snapshotsSaved === 1);
    await propose(1);
    await until(
      "the log behind the snapshot to be compacted",
      () => leader.storage.firstIndex() > firstIndexWhileWriting,
    );
    assert.ok(leader.storage.firstIndex() <= lastIndexAtSnapshot - 2 + 1, "entries kept behind the snapshot");
  } finally {
    for (const m of cluster.values()) m.driver.stop();
  }
});

test("idle() waits for a snapshot being written", async () => {
  const cluster = startCluster({ 1: 10, 2: 100, 3: 100 }, {}, { everyEntries: 20, keepEntries: 1 });
  try {
    const leader = await awaitLeader(cluster);
    let release = () => {};
    leader.persistence.snapshotGate = new Promise<void>((resolve) => {
      release = resolve;
    });
    for (let i = 0; i < 20; i++) await leader.driver.run((raft) => raft.propose(new Uint8Array([i + 1])));
    await until("the leader to start writing a snapshot", () => leader.persistence.snapshotsStarted === 1);
    leader.driver.stop();
    let idle = false;
    const waiting = leader.driver.idle().then(() => {
      idle = true;
    });
    await sleep(30);
    assert.not.ok(idle, "idle() resolved while the snapshot was still being written");
    release();
    await waiting;
    assert.is(leader.persistence.snapshotsSaved, 1);
  } finally {
    for (const m of cluster.values()) m.driver.stop();
  }
});

test.run();
