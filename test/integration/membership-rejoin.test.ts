// Members coming back with real agents: a founding member that lost its data dir is refused with a clear error (it
// would vote twice) and rejoins as a new member once removed; a joined learner that lost its data dir is refused
// by --join the same way; a joiner killed -9 half way through receiving its snapshot restarts from what it has and
// catches up. (etcd 3.4 refuses a lost founder at start too: "member ... has already been bootstrapped".)
import { rm } from "node:fs/promises";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ClusterFixture } from "../helpers/cluster.js";
import { waitFor } from "../helpers/ports.js";
import {
  api,
  BIG_VALUES,
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

async function countOn(url: string, prefix: string): Promise<number> {
  const answer = await api(url, "/v3/kv/range", {
    key: b64(prefix),
    range_end: b64(`${prefix.slice(0, -1)}0`),
    count_only: true,
    serializable: true,
  });
  return Number(answer.body.count ?? 0);
}

test("a founder or a learner that lost its data dir is refused, and rejoins as new once removed", async () => {
  await withFounders("membership-rejoin", ["f1", "f2", "f3"], { voters: 3 }, async ({ fixture, founders, leader }) => {
    const learner = await fixture.defineJoiner("jl", leader.clientUrl, 3);
    await learner.start();
    await waitFor("every member published", async () =>
      (await memberList(leader.clientUrl)).every((m) => (m.name ?? "") !== ""),
    );
    assert.is((await put(leader.clientUrl, "/kept", "v")).status, 200);

    // A founder loses its disk and comes back with the same flags.
    const lost = founders.find((a) => a !== leader)!;
    const lostId = await memberIdOf(lost);
    await lost.kill("SIGKILL");
    await rm(lost.spec.dataDir, { recursive: true, force: true });
    await lost.start(1500).catch(() => {});
    assert.is(await lost.exitCode(), 1, `a founder without its data dir ran:\n${lost.logs()}`);
    assert.match(lost.logs(), /lost its data and must not vote again/);
    note(
      lost
        .logs()
        .split("\n")
        .find((line) => line.includes("lost its data")) ?? "",
    );

    // The same for the learner: --join finds its name already in the cluster.
    await learner.kill("SIGKILL");
    await rm(learner.spec.dataDir, { recursive: true, force: true });
    await learner.start(1500).catch(() => {});
    assert.is(await learner.exitCode(), 1, `a learner without its data dir ran:\n${learner.logs()}`);
    assert.match(learner.logs(), /already in the cluster, but this data dir is empty/);

    // The operator removes both; each comes back as a new member through --join, with an empty data dir.
    const learnerId = (await memberList(leader.clientUrl)).find((m) => m.name === "jl")!.ID;
    for (const id of [lostId, learnerId]) {
      assert.is((await api(leader.clientUrl, "/v3/cluster/member/remove", { ID: id })).status, 200);
    }
    learner.spec.args = ["--join", leader.clientUrl, "--voters", "3"];
    lost.spec.args = ["--join", leader.clientUrl, "--voters", "3"];
    await learner.start();
    await lost.start();
    await waitFor("both back, as new members", async () => {
      const members = await memberList(leader.clientUrl);
      const back = members.filter((m) => m.name === "jl" || m.name === lost.name);
      return back.length === 2 && back.every((m) => m.ID !== lostId && m.ID !== learnerId);
    });
    assert.is(await countOn(lost.clientUrl, "/kept/"), 0);
    // Its name is published before it has caught up: wait for the key written while it was away.
    await waitFor(
      "the rejoined member caught up",
      async () =>
        (await api(lost.clientUrl, "/v3/kv/range", { key: b64("/kept"), serializable: true })).body.count === "1",
    );
    // --voters 3 with 2 voters left: the cluster promotes one of them again.
    await waitFor(
      "3 voters again",
      async () => (await memberList(leader.clientUrl)).filter((m) => !m.isLearner).length === 3,
    );
  });
});

test("a joiner killed -9 half way through its snapshot restarts from its data dir and catches up", async () => {
  requireBuiltCli();
  const fixture = await ClusterFixture.create("membership-snapshot-kill", { VIGIE_SNAPSHOT_COUNT: "50" });
  await withLogsOnFailure(fixture, async () => {
    const { leader, joiner } = await withBigSnapshotJoiner(fixture, ["s1", "s2", "s3"], "sj");
    // Killed while its snapshot is on the way (the leader starts sending it as soon as the learner is added, and
    // start() returns once the API answers): it holds an identity but no complete state yet.
    const haveBefore = await countOn(joiner.clientUrl, "/big/").catch(() => -1);
    await joiner.kill("SIGKILL");
    const snapshotLines = joiner
      .logs()
      .split("\n")
      .filter((line) => /snapshot/i.test(line));
    note(
      `joiner killed -9 holding ${haveBefore} of ${BIG_VALUES} keys; its snapshot log lines: ${snapshotLines.length}`,
    );
    const restartedMs = Date.now();
    await joiner.start();
    await waitFor(
      "the joiner caught up after its restart",
      async () => (await countOn(joiner.clientUrl, "/big/")) === BIG_VALUES,
      15_000,
    );
    note(`joiner restarted after kill -9 mid-snapshot: caught up ${Date.now() - restartedMs} ms later`);
    assert.is((await memberList(leader.clientUrl)).length, 4, "no second member for the same joiner");
    assert.is((await put(joiner.clientUrl, "/via-joiner", "ok")).status, 200);
  });
});

test.run();
