// The driver after a stall (a slow fsync): ticks pile up while it waits. The followers' answers that arrived
// meanwhile are stepped before the clock catches up, and only a few ticks are caught up per turn, so check-quorum
// does not depose a leader whose followers are all there.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { awaitLeader, sleep, startCluster, TICK_MS } from "./driver-cluster.js";

test("a leader whose disk hangs for several election timeouts stays leader: its followers answered meanwhile", async () => {
  // Member 1 times out first (10 ticks = 100 ms); the followers wait 100 ticks, so the stall below cannot make them
  // campaign: only the leader's own check-quorum could end its term.
  const cluster = startCluster({ 1: 10, 2: 100, 3: 100 });
  try {
    const leader = await awaitLeader(cluster);
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
