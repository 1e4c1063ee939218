// A leader's Ready that only commits: the clients waiting for those entries are answered (their promise jobs run)
// before the commit notices go to the followers, whose socket writes would otherwise delay every answer.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { awaitLeader, sleep, startCluster, TICK_MS } from "./driver-cluster.js";

test("the leader answers the clients of newly committed entries before it sends the commit notices", async () => {
  const events: string[] = [];
  let proposedIndex = 0;
  const cluster = startCluster(
    { 1: 10, 2: 100, 3: 100 },
    {
      onSend: (from, messages) => {
        if (from !== 1 || proposedIndex === 0) return;
        for (const m of messages) {
          // The notice: an append with no entries carrying a commit that covers the proposal.
          if (m.type === "app" && m.entries.length === 0 && m.commit >= proposedIndex) events.push(`notice ${m.to}`);
        }
      },
      onApplied: (member, index) => {
        if (member !== 1 || proposedIndex === 0 || index < proposedIndex) return;
        // A client's continuation: a promise job, as the API server's request handler is.
        void Promise.resolve().then(() => events.push("answered"));
      },
    },
  );
  try {
    const leader = await awaitLeader(cluster);
    assert.is(leader.raft.role, "leader");
    await sleep(5 * TICK_MS);
    await leader.driver.run((raft) => {
      raft.propose(new Uint8Array([1]));
      proposedIndex = raft.status().lastIndex;
    });
    // Both followers get a notice (one may get another when its answer asks for more: counted once).
    const notified = () => [...new Set(events.filter((e) => e.startsWith("notice")))].sort();
    for (let i = 0; i < 100 && notified().length < 2; i++) await sleep(5);
    assert.ok(events.includes("answered"), `the client was answered: ${events.join(", ")}`);
    assert.is(events[0], "answered", `answered before any notice: ${events.join(", ")}`);
    assert.equal(notified(), ["notice 2", "notice 3"], events.join(", "));
  } finally {
    for (const m of cluster.values()) m.driver.stop();
  }
});

test.run();
