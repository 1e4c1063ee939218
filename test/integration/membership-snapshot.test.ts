// Learners in motion with real agents: one removed while its snapshot is still streaming (the removal is answered at
// once, the cluster keeps committing, the learner ends up out of every list and stops replicating), and one joining
// through a follower at the very moment the leader is killed -9 (it must end up a caught-up learner, or fail
// with a clear error; never a half-added member the cluster keeps waiting for).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ClusterFixture } from "../helpers/cluster.js";
import { waitFor } from "../helpers/ports.js";
import {
  api,
  b64,
  memberIdOf,
  memberList,
  note,
  put,
  requireBuiltCli,
  withBigSnapshotJoiner,
  withFounders,
  withLogsOnFailure,
} from "./membership-kit.js";

test("a learner removed while its snapshot is still streaming", async () => {
  requireBuiltCli();
  const fixture = await ClusterFixture.create("membership-snapshot-remove", { VIGIE_SNAPSHOT_COUNT: "50" });
  await withLogsOnFailure(fixture, async () => {
    const { founders, leader, joiner } = await withBigSnapshotJoiner(fixture, ["m1", "m2", "m3"], "mj");
    const joinerId = await memberIdOf(joiner);
    const removedAtMs = Date.now();
    const answer = await api(founders.find((a) => a !== leader)!.clientUrl, "/v3/cluster/member/remove", {
      ID: joinerId,
    });
    note(`learner removed mid-snapshot: answered ${answer.status} in ${Date.now() - removedAtMs} ms`);
    assert.is(answer.status, 200, JSON.stringify(answer.body));
    // The member that answered has applied the removal; the others apply it on their own, soon after.
    for (const agent of founders) {
      await waitFor(`${agent.name} to drop the learner`, async () =>
        (await memberList(agent.clientUrl)).every((m) => m.ID !== joinerId),
      );
    }
    for (let i = 0; i < 20; i++) assert.is((await put(leader.clientUrl, `/after/${i}`, "v")).status, 200);
    // Once it applies its removal (or never got the snapshot) it is unhealthy; it must never count as a member.
    await waitFor(
      "the removed learner is unhealthy",
      async () => (await fetch(`${joiner.clientUrl}/health`)).status === 503,
    );
    const status = await api(leader.clientUrl, "/v3/maintenance/status");
    assert.is(status.status, 200);
    assert.is(status.body.errors, undefined, JSON.stringify(status.body));
  });
});

test("a learner joining through a follower while the leader is killed -9", async () => {
  await withFounders(
    "membership-join-election",
    ["e1", "e2", "e3"],
    { voters: 3 },
    async ({ fixture, founders, leader }) => {
      const follower = founders.find((a) => a !== leader)!;
      for (let i = 0; i < 50; i++) assert.is((await put(leader.clientUrl, `/pre/${i}`, "v")).status, 200);
      const joiner = await fixture.defineJoiner("ej", follower.clientUrl, 3);
      const startedMs = Date.now();
      const joined = joiner.start(15_000).then(
        () => "joined",
        (error: unknown) => `failed: ${String(error).split("\n").slice(0, 3).join(" ")}`,
      );
      await leader.kill("SIGKILL");
      const outcome = await joined;
      note(`join during a leader kill: ${outcome.slice(0, 300)} after ${Date.now() - startedMs} ms`);
      const survivors = founders.filter((a) => a !== leader);
      const members = await waitFor("a member list from the survivors", () => memberList(survivors[0]!.clientUrl));
      if (outcome === "joined") {
        await waitFor("the learner caught up", async () => {
          const answer = await api(joiner.clientUrl, "/v3/kv/range", {
            key: b64("/pre/"),
            range_end: b64("/pre0"),
            count_only: true,
            serializable: true,
          });
          return answer.body.count === "50";
        });
        assert.is(members.filter((m) => m.isLearner).length, 1);
      } else {
        // Refused cleanly: no unstarted member left behind for the cluster to wait for.
        assert.is(members.length, 3, JSON.stringify(members));
      }
      // The cluster itself got over its leader's death.
      await waitFor(
        "a write through the survivors",
        async () => (await put(follower.clientUrl, "/post", "ok", 2000)).status === 200,
      );
    },
  );
});

test.run();
