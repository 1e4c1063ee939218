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

/** Proposes `count` one-byte entries through `leader`'s loop. */
async function propose(leader: Member, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await inLoop(leader, (raft) => raft.propose(new Uint8Array([i + 1])));
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

    // Past the entries that form the cluster and elect the leader, whatever their number.
    await propose(leader, 20);
    await until("the leader to start writing a snapshot", () => leader.persistence.snapshotsStarted === 1);
    const firstIndexWhileWriting = leader.storage.firstIndex();
    const lastIndexAtSnapshot = leader.storage.lastIndex();

    // The disk holds the snapshot back; the loop must not wait for it.
    await propose(leader, 10);
    await until("the entries proposed meanwhile to be applied on the leader", () => {
      return (applied.get(1) ?? 0) >= lastIndexAtSnapshot + 10;
    });
    assert.is(leader.persistence.snapshotsSaved, 0, "the snapshot is still being written");
    assert.is(leader.persistence.snapshotsStarted, 1, "no second snapshot while one is being written");
    assert.is(leader.storage.firstIndex(), firstIndexWhileWriting, "no compaction before the snapshot is written");

    release();
    await until("the snapshot to be written", () => leader.persistence.snapshotsSaved === 1);
    await propose(leader, 1);
    await until(
      "the log behind the snapshot to be compacted",
      () => leader.storage.firstIndex() > firstIndexWhileWriting,
    );
    assert.ok(leader.storage.firstIndex() <= lastIndexAtSnapshot - 2 + 1, "entries kept behind the snapshot");
  } finally {
    for (const m of cluster.values()) m.driver.stop();
  }
});

test("in a store that scales the interval, the next snapshot waits for entries holding half as many bytes as the last", async () => {
  const applied = new Map<number, number>();
  const cluster = startCluster(
    { 1: 10, 2: 100, 3: 100 },
    { onApplied: (member, index) => applied.set(member, index) },
    { everyEntries: 20, keepEntries: 2, scalesWithSize: true },
  );
  try {
    const leader = await awaitLeader(cluster);
    // No snapshot yet (0 bytes): the first one comes after the 20 entries alone.
    await propose(leader, 20);
    await until("the first snapshot to be written", () => leader.persistence.snapshotsSaved === 1);
    const snapshotBytes = leader.persistence.lastSnapshotBytes;
    const snapshotIndex = leader.storage.snapshot().metadata.index;
    // The last of the 20 may have been applied after the snapshot was taken: they count for the next one.
    await until("the 20 entries to be applied", () => (applied.get(1) ?? 0) === leader.storage.lastIndex());
    const bytesSince = () => leader.storage.lastIndex() - snapshotIndex;
    const bytesDue = Math.ceil(snapshotBytes / 2);
    assert.ok(bytesDue > bytesSince() + 40, `half the snapshot (${snapshotBytes} bytes) beyond 40 more entries`);

    // 20 more one-byte entries: enough entries, not enough bytes.
    await propose(leader, 20);
    await until("the 20 entries to be applied", () => (applied.get(1) ?? 0) >= snapshotIndex + 20);
    await sleep(50);
    assert.is(
      leader.persistence.snapshotsStarted,
      1,
      "no snapshot before the entries hold half as many bytes as the last",
    );

    // One byte short of half the snapshot's size, then the byte that reaches it.
    await propose(leader, bytesDue - 1 - bytesSince());
    await until("those entries to be applied", () => (applied.get(1) ?? 0) >= snapshotIndex + bytesDue - 1);
    await sleep(50);
    assert.is(leader.persistence.snapshotsStarted, 1, "no snapshot one byte short");
    await propose(leader, 1);
    await until("the second snapshot to start", () => leader.persistence.snapshotsStarted === 2);
  } finally {
    for (const m of cluster.values()) m.driver.stop();
  }
});

test("a member that restored the leader's snapshot waits for entries holding half its size before its own", async () => {
  const applied = new Map<number, number>();
  let partitioned = true;
  const cluster = startCluster(
    { 1: 10, 2: 100, 3: 100 },
    {
      drop: (m) => partitioned && (m.to === 3 || m.from === 3),
      onApplied: (member, index) => applied.set(member, index),
    },
    { everyEntries: 20, keepEntries: 2, scalesWithSize: true },
  );
  try {
    const leader = await awaitLeader(cluster);
    const lagging = cluster.get(3)!;
    // Cut off from the start, member 3 falls behind the leader's first snapshot and the compaction after it.
    await propose(leader, 20);
    await until("the leader's snapshot to be written", () => leader.persistence.snapshotsSaved === 1);
    await propose(leader, 1);
    await until("the leader to compact its log", () => leader.storage.firstIndex() > 1);
    partitioned = false;
    await until("member 3 to restore the leader's snapshot", () => lagging.persistence.snapshotsSaved === 1);
    const restoredIndex = lagging.storage.snapshot().metadata.index;
    const bytesDue = Math.ceil(lagging.persistence.lastSnapshotBytes / 2);
    assert.ok(bytesDue > leader.storage.lastIndex() - restoredIndex + 40, "half the snapshot beyond 40 more entries");

    // 20 one-byte entries: enough entries since the restored snapshot, not enough bytes for member 3's own.
    await propose(leader, 20);
    await until("member 3 to apply them", () => (applied.get(3) ?? 0) >= restoredIndex + 20);
    await sleep(50);
    assert.is(lagging.persistence.snapshotsStarted, 1, "member 3 took a snapshot of its own too soon");
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
    await propose(leader, 20);
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

test("a snapshot from the leader waits for the one this member is writing, then replaces it", async () => {
  let partitioned = false;
  let snapshotsSentTo3 = 0;
  const cluster = startCluster(
    { 1: 10, 2: 100, 3: 100 },
    {
      drop: (m) => {
        if (partitioned) return m.to === 3 || m.from === 3;
        if (m.type === "snap" && m.to === 3) snapshotsSentTo3++;
        return false;
      },
    },
    { everyEntries: 20, keepEntries: 2 },
  );
  try {
    const leader = await awaitLeader(cluster);
    const lagging = cluster.get(3)!;
    let release = () => {};
    lagging.persistence.snapshotGate = new Promise<void>((resolve) => {
      release = resolve;
    });
    await propose(leader, 20);
    await until("member 3 to start writing its own snapshot", () => lagging.persistence.snapshotsStarted === 1);
    const ownSnapshotIndex = lagging.storage.snapshot().metadata.index;

    // Cut off, member 3 falls behind the leader's log: the leader snapshots and compacts past it.
    partitioned = true;
    await propose(leader, 50);
    await until("the leader to compact its log past member 3", () => {
      return leader.storage.firstIndex() > lagging.storage.lastIndex() + 1;
    });
    partitioned = false;
    // The leader's snapshot reaches member 3, whose own is still being written: it must wait for it.
    await until("the leader to send member 3 a snapshot", () => snapshotsSentTo3 > 0);
    await sleep(50);
    assert.is(lagging.persistence.snapshotsStarted, 1, "the leader's snapshot is not saved while member 3's is");
    assert.is(lagging.persistence.snapshotsSaved, 0);
    assert.is(lagging.storage.snapshot().metadata.index, ownSnapshotIndex, "the leader's snapshot is not applied yet");

    release();
    await until("member 3 to apply the leader's snapshot", () => {
      return lagging.storage.snapshot().metadata.index >= leader.storage.firstIndex() - 1;
    });
    assert.is(lagging.persistence.snapshotsSaved, 2);
    await until("member 3 to catch up", () => lagging.raft.status().commit === leader.raft.status().commit);
  } finally {
    for (const m of cluster.values()) m.driver.stop();
  }
});

test.run();
