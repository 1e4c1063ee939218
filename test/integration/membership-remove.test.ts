// Removing members of a running cluster of real agents: the leader removed through the API while a write load runs
// (no acknowledged write lost, a new leader serves writes, the time printed; the removed agent stops replicating),
// and removed members restarted from their old data dirs (one removed while it ran, one removed while it was down):
// they must not disturb the cluster (no new term, writes go on) and must stop with a clear error, as etcd 3.4
// refuses them ("the member has been permanently removed from the cluster", then it exits).
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AgentProcess } from "../helpers/cluster.js";
import { waitFor } from "../helpers/ports.js";
import { api, leaderOf, memberIdOf, memberList, note, put, WriteLoad, withFounders } from "./membership-kit.js";

/** The raft term the cluster is in, as `agent` reports it. */
async function termOf(agent: AgentProcess): Promise<number> {
  return Number((await api(agent.clientUrl, "/v3/maintenance/status")).body.raftTerm);
}

/** Waits for a removed agent to end on its own; its exit code (the test fails if it keeps running). */
async function endsOnItsOwn(agent: AgentProcess, waitMaxMs: number): Promise<number | null> {
  const ended = await Promise.race([
    agent.exitCode().then((code) => ({ code })),
    new Promise<undefined>((r) => setTimeout(() => r(undefined), waitMaxMs)),
  ]);
  assert.ok(ended !== undefined, `removed member ${agent.name} still runs ${waitMaxMs} ms later:\n${agent.logs()}`);
  return ended.code;
}

test("the leader removed through the API under a write load: nothing acknowledged lost, a new leader serves", async () => {
  await withFounders(
    "membership-remove",
    ["r1", "r2", "r3", "r4"],
    { voters: 4 },
    async ({ founders: agents, leader }) => {
      const others = agents.filter((a) => a !== leader);
      const leaderId = await memberIdOf(leader);
      // Writers on every member, the leader too: its clients see their writes refused once it is out.
      const load = new WriteLoad(agents.map((a) => a.clientUrl));
      await new Promise((r) => setTimeout(r, 400));
      const removedAtMs = Date.now();
      const answer = await api(leader.clientUrl, "/v3/cluster/member/remove", { ID: leaderId });
      const answeredMs = Date.now() - removedAtMs;
      assert.is(answer.status, 200, JSON.stringify(answer.body));
      assert.not.ok(
        (answer.body.members as Array<{ ID: string }>).some((m) => m.ID === leaderId),
        "the answer lists the removed leader",
      );
      const next = await leaderOf(others, 5000);
      const newLeaderMs = Date.now() - removedAtMs;
      await waitFor(
        "a write through the new leader",
        async () => (await put(next.clientUrl, "/after", "ok", 5000)).status === 200,
        10_000,
      );
      const writableMs = Date.now() - removedAtMs;
      await new Promise((r) => setTimeout(r, 300));
      await load.stop();
      const lost = await load.lost(next.clientUrl);
      note(
        `leader removed: answered in ${answeredMs} ms, new leader seen after ${newLeaderMs} ms, a write served after ` +
          `${writableMs} ms; ${load.acknowledged.length} writes acknowledged, ${load.failures} refused, ${lost.length} lost`,
      );
      assert.equal(lost, [], "acknowledged writes lost");
      assert.ok(load.acknowledged.length > 20, `the load made progress (${load.acknowledged.length})`);
      for (const agent of others) {
        const ids = (await memberList(agent.clientUrl)).map((m) => m.ID);
        assert.not.ok(ids.includes(leaderId), `${agent.name} still lists the removed leader`);
      }
      // etcd's removed member exits. A removed vigie agent stays up (it may supervise the app) but stops
      // replicating: unhealthy, and it refuses writes with etcd's error instead of forwarding them anywhere.
      assert.ok(leader.alive());
      const health = await fetch(`${leader.clientUrl}/health`);
      assert.is(health.status, 503, "a removed member's /health is unhealthy");
      const refused = await put(leader.clientUrl, "/from-removed", "x");
      assert.is(refused.body.error, "etcdserver: the member has been permanently removed from the cluster");
      await leader.kill("SIGKILL");

      // Restarted from its old data dir it must not disturb the others, and must stop with a clear message.
      const term = await termOf(next);
      const restartedAtMs = Date.now();
      // start() polls /health until its timeout even once the process ended: kept short, the exit is awaited below.
      await leader.start(1000).catch(() => {});
      const restartCode = await endsOnItsOwn(leader, 8000);
      note(
        `removed ex-leader restarted from its data dir: exited ${restartCode} after ${Date.now() - restartedAtMs} ms`,
      );
      assert.is.not(restartCode, 0);
      assert.match(leader.logs(), /removed from the cluster/);
      assert.is(await termOf(next), term, "the removed member's return started an election");
      assert.is((await put(next.clientUrl, "/after-return", "ok")).status, 200);
    },
  );
});

test("the leader removed through a follower: the follower answers once it applied the removal", async () => {
  await withFounders("membership-remove-via", ["v1", "v2", "v3"], { voters: 3 }, async ({ founders, leader }) => {
    const [via, frozen] = founders.filter((a) => a !== leader) as [AgentProcess, AgentProcess];
    const leaderId = await memberIdOf(leader);
    // The follower hands the change to the leader, which applies its own removal and stops talking to the cluster,
    // so its answer may never come. With the third member frozen just before (recently active, so the removal is
    // not refused as unhealthy), the two left cannot elect a leader either: only the follower's own application of
    // the committed removal can answer the client.
    process.kill(frozen.pid!, "SIGSTOP");
    try {
      const answer = await api(via.clientUrl, "/v3/cluster/member/remove", { ID: leaderId }, 4000);
      assert.is(answer.status, 200, JSON.stringify(answer.body));
      assert.not.ok((answer.body.members as Array<{ ID: string }>).some((m) => m.ID === leaderId));
    } finally {
      process.kill(frozen.pid!, "SIGCONT");
    }
    const next = await leaderOf([via, frozen], 5000);
    assert.is((await put(next.clientUrl, "/after", "ok")).status, 200);
  });
});

test("a member removed while it was down and restarted from its old data dir stops without disturbing anyone", async () => {
  await withFounders(
    "membership-remove-down",
    ["d1", "d2", "d3"],
    { voters: 3 },
    async ({ founders: agents, leader }) => {
      const victim = agents.find((a) => a !== leader)!;
      const victimId = await memberIdOf(victim);
      await victim.kill("SIGKILL");
      const answer = await api(leader.clientUrl, "/v3/cluster/member/remove", { ID: victimId });
      assert.is(answer.status, 200, JSON.stringify(answer.body));
      const term = await termOf(leader);
      // Its log does not hold its removal: only the others know.
      const restartedAtMs = Date.now();
      await victim.start(1000).catch(() => {});
      const code = await endsOnItsOwn(victim, 8000);
      note(`member removed while down, restarted: exited ${code} after ${Date.now() - restartedAtMs} ms`);
      assert.is.not(code, 0);
      assert.match(victim.logs(), /removed from the cluster/);
      note(
        victim
          .logs()
          .split("\n")
          .find((line) => line.includes("removed from the cluster")) ?? "",
      );
      assert.is(await termOf(leader), term, "the removed member's return started an election");
      assert.is((await put(leader.clientUrl, "/after-return", "ok")).status, 200);
      assert.is((await memberList(leader.clientUrl)).length, 2);
    },
  );
});

// (The leader's appends wait in the socket while it is frozen, so it applies its removal as it resumes; one that
// truly misses it learns from a peer's probe instead: see the learner removed mid-snapshot in membership-snapshot.)
test("a voter removed while frozen (SIGSTOP) stops replicating once it resumes, without disturbing anyone", async () => {
  await withFounders(
    "membership-remove-frozen",
    ["z1", "z2", "z3", "z4"],
    { voters: 4 },
    async ({ founders: agents, leader }) => {
      const frozen = agents.find((a) => a !== leader)!;
      const frozenId = await memberIdOf(frozen);
      process.kill(frozen.pid!, "SIGSTOP");
      try {
        await new Promise((r) => setTimeout(r, 2000));
        assert.is((await api(leader.clientUrl, "/v3/cluster/member/remove", { ID: frozenId })).status, 200);
        assert.is((await put(leader.clientUrl, "/after", "ok")).status, 200);
      } finally {
        process.kill(frozen.pid!, "SIGCONT");
      }
      const resumedMs = Date.now();
      await waitFor("the frozen member knows it was removed", async () => {
        const status = await api(frozen.clientUrl, "/v3/maintenance/status");
        return (status.body.errors ?? []).some((e: string) => e.includes("removed"));
      });
      note(`a member removed while frozen learned it ${Date.now() - resumedMs} ms after it resumed`);
      assert.is((await fetch(`${frozen.clientUrl}/health`)).status, 503);
      const term = await termOf(leader);
      await new Promise((r) => setTimeout(r, 1500));
      assert.is(await termOf(leader), term, "the removed member disturbed the cluster");
    },
  );
});

test("removing a live voter while another is down is refused as etcd does ('unhealthy cluster'); the dead one goes", async () => {
  await withFounders(
    "membership-remove-quorum",
    ["u1", "u2", "u3"],
    { voters: 3 },
    async ({ founders: agents, leader }) => {
      const [dead, live] = agents.filter((a) => a !== leader) as [AgentProcess, AgentProcess];
      const deadId = await memberIdOf(dead);
      const liveId = await memberIdOf(live);
      await dead.kill("SIGKILL");
      // Until the leader counts it down: its flag stays set until the next check-quorum round (an election timeout,
      // 500 ms by default), the 100 ms samples carry it on, and a voter heard from in the last 1.5 s counts as up.
      await new Promise((r) => setTimeout(r, 500 + 100 + 1500 + 900));
      // Out, the live one would leave 2 voters, one of them down: no quorum, the cluster stuck until the dead returns.
      const refused = await api(live.clientUrl, "/v3/cluster/member/remove", { ID: liveId });
      assert.is(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(refused.body, {
        error: "etcdserver: unhealthy cluster",
        message: "etcdserver: unhealthy cluster",
        code: 14,
      });
      // Adding a voter to a cluster with one of three down would also leave it short (2 up of 4 voters).
      const added = await api(leader.clientUrl, "/v3/cluster/member/add", { peerURLs: ["http://127.0.0.1:9"] });
      assert.is(added.body.error, "etcdserver: unhealthy cluster", JSON.stringify(added.body));
      const learner = await api(leader.clientUrl, "/v3/cluster/member/add", {
        peerURLs: ["http://127.0.0.1:9"],
        isLearner: true,
      });
      assert.is(learner.status, 200, "a learner does not count in the quorum");
      assert.is((await api(leader.clientUrl, "/v3/cluster/member/remove", { ID: learner.body.member.ID })).status, 200);
      const removed = await api(leader.clientUrl, "/v3/cluster/member/remove", { ID: deadId });
      assert.is(removed.status, 200, JSON.stringify(removed.body));
      assert.is((await put(live.clientUrl, "/after", "ok")).status, 200);
    },
  );
});

test.run();
