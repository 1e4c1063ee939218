// A leader's Ready that only commits: the clients waiting for those entries are answered (their promise jobs run)
// before the commit notices go to the followers, whose socket writes would otherwise delay every answer.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Message } from "../../../src/store/raft/types.js";
import { awaitLeader, sleep, startCluster, TICK_MS } from "./driver-cluster.js";

/** Records the leader's commit notices: appends with no entries whose commit covers the proposal. */
function recordNotices(events: string[], proposedIndex: () => number) {
  return (from: number, messages: readonly Message[]) => {
    if (from !== 1 || proposedIndex() === 0) return;
    for (const m of messages) {
      if (m.type === "app" && m.entries.length === 0 && m.commit >= proposedIndex()) events.push(`notice ${m.to}`);
    }
  };
}

test("the leader answers the clients of newly committed entries before it sends the commit notices", async () => {
  const events: string[] = [];
  let proposedIndex = 0;
  const cluster = startCluster(
    { 1: 10, 2: 100, 3: 100 },
    {
      onSend: recordNotices(events, () => proposedIndex),
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

test("a membership change that commits is announced before it is applied (applying it may drop the peer)", async () => {
  const events: string[] = [];
  let proposedIndex = 0;
  const cluster = startCluster(
    { 1: 10, 2: 100, 3: 100 },
    {
      onSend: recordNotices(events, () => proposedIndex),
      onApplied: (member, index) => {
        if (member === 1 && proposedIndex !== 0 && index >= proposedIndex) events.push("applied");
      },
    },
  );
  try {
    const leader = await awaitLeader(cluster);
    assert.is(leader.raft.role, "leader");
    await sleep(5 * TICK_MS);
    await leader.driver.run((raft) => {
      raft.proposeConfChange({ type: "addLearner", nodeId: 4, context: new Uint8Array(0) });
      proposedIndex = raft.status().lastIndex;
    });
    for (let i = 0; i < 100 && !events.includes("applied"); i++) await sleep(5);
    assert.ok(events.includes("applied"), `the change was applied: ${events.join(", ")}`);
    assert.ok(events.indexOf("applied") > 0, `a notice went out first: ${events.join(", ")}`);
    assert.ok(events[0]!.startsWith("notice"), events.join(", "));
  } finally {
    for (const m of cluster.values()) m.driver.stop();
  }
});

test.run();
