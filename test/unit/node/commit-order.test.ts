// A leader's Ready that only commits: the clients waiting for those entries are answered (their promise jobs run)
// before the commit notices go to the followers, whose socket writes would otherwise delay every answer.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { RaftNode } from "../../../src/store/raft/raft-node.js";
import { awaitLeader, sleep, startCluster, TICK_MS } from "./driver-cluster.js";

/**
 * Runs `propose` on member 1 once it leads a 3-member cluster and records, in order, its commit notices (appends
 * with no entries whose commit covers the proposal: "notice <to>") and what `onApplied` adds when member 1 applies
 * the proposal. Returns the record once `done` says so (or after 500 ms).
 */
async function recordCommit(
  propose: (raft: RaftNode) => void,
  onApplied: (events: string[]) => void,
  done: (events: string[]) => boolean,
): Promise<string[]> {
  const events: string[] = [];
  let proposedIndex = 0;
  const cluster = startCluster(
    { 1: 10, 2: 100, 3: 100 },
    {
      onSend: (from, messages) => {
        if (from !== 1 || proposedIndex === 0) return;
        for (const m of messages) {
          if (m.type === "app" && m.entries.length === 0 && m.commit >= proposedIndex) events.push(`notice ${m.to}`);
        }
      },
      onApplied: (member, index) => {
        if (member === 1 && proposedIndex !== 0 && index >= proposedIndex) onApplied(events);
      },
    },
  );
  try {
    const leader = await awaitLeader(cluster);
    assert.is(leader.raft.role, "leader");
    await sleep(5 * TICK_MS);
    await leader.driver.run((raft) => {
      propose(raft);
      proposedIndex = raft.status().lastIndex;
    });
    for (let i = 0; i < 100 && !done(events); i++) await sleep(5);
    return events;
  } finally {
    for (const m of cluster.values()) m.driver.stop();
  }
}

/** The followers notified, each once (one may get another notice when its answer asks for more). */
const notified = (events: string[]) => [...new Set(events.filter((e) => e.startsWith("notice")))].sort();

test("the leader answers the clients of newly committed entries before it sends the commit notices", async () => {
  const events = await recordCommit(
    (raft) => raft.propose(new Uint8Array([1])),
    // A client's continuation: a promise job, as the API server's request handler is.
    (record) => void Promise.resolve().then(() => record.push("answered")),
    (record) => notified(record).length === 2,
  );
  assert.ok(events.includes("answered"), `the client was answered: ${events.join(", ")}`);
  assert.is(events[0], "answered", `answered before any notice: ${events.join(", ")}`);
  assert.equal(notified(events), ["notice 2", "notice 3"], events.join(", "));
});

test("a membership change that commits is announced before it is applied (applying it may drop the peer)", async () => {
  const events = await recordCommit(
    (raft) => raft.proposeConfChange({ type: "addLearner", nodeId: 4, context: new Uint8Array(0) }),
    (record) => {
      if (!record.includes("applied")) record.push("applied");
    },
    (record) => record.includes("applied"),
  );
  assert.ok(events.includes("applied"), `the change was applied: ${events.join(", ")}`);
  assert.ok(events[0]?.startsWith("notice"), `a notice went out before it was applied: ${events.join(", ")}`);
});

test.run();
