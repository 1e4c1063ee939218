// Automatic promotion with real agents: 3 voters wanting 5 (--voters 5) and 3 learners joining with --join: exactly
// two are promoted, one conf change at a time, and never a sixth voter. A learner that is behind (its process
// stopped with SIGSTOP while writes go on) is never promoted, even while a voter is missing; it is once it caught up.
// (etcd 3.4 has no automatic promotion: `member promote` of a learner behind is refused with "can only promote a
// learner member which is in sync with leader", the same rule of 90% of the leader's log this one applies.)
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AgentProcess } from "../helpers/cluster.js";
import { waitFor } from "../helpers/ports.js";
import { api, memberIdOf, memberList, note, put, type WireMember, withFounders } from "./membership-kit.js";

/** The voter count the leader logged with each automatic promotion it proposed, in order. */
function promotionsProposed(logs: string): number[] {
  return logs
    .split("\n")
    .filter((line) => line.includes('"promoting a caught-up learner"'))
    .map((line) => (JSON.parse(line) as { voters: number }).voters);
}

const voterNames = (members: WireMember[]) =>
  members
    .filter((m) => !m.isLearner)
    .map((m) => m.name ?? "")
    .sort();

/** Samples the leader's member list every 20 ms; the most voters ever seen and the voter sets in order. */
class VoterWatch {
  maxVoters = 0;
  readonly history: string[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(url: () => string) {
    this.loop = (async () => {
      while (this.running) {
        const members = await memberList(url()).catch(() => undefined);
        if (members !== undefined) {
          const voters = voterNames(members);
          this.maxVoters = Math.max(this.maxVoters, voters.length);
          const text = voters.join(",");
          if (this.history.at(-1) !== text) this.history.push(text);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

test("--voters 5 with 3 voters and 3 learners: exactly two promoted, one at a time", async () => {
  await withFounders(
    "membership-promotion",
    ["p1", "p2", "p3"],
    { voters: 5 },
    async ({ fixture, founders, leader }) => {
      const watch = new VoterWatch(() => leader.clientUrl);
      const learners: AgentProcess[] = [];
      for (const name of ["l1", "l2", "l3"]) learners.push(await fixture.defineJoiner(name, leader.clientUrl, 5));
      const startedMs = Date.now();
      await Promise.all(learners.map((l) => l.start()));
      await waitFor("5 voters", async () => voterNames(await memberList(leader.clientUrl)).length === 5, 10_000);
      const promotedMs = Date.now() - startedMs;
      // Another timer round or two: a third promotion would show by now.
      await new Promise((r) => setTimeout(r, 1500));
      await watch.stop();
      const members = await memberList(leader.clientUrl);
      note(
        `--voters 5: promoted two learners ${promotedMs} ms after three joined; voter sets: ${watch.history.join(" -> ")}`,
      );
      assert.is(voterNames(members).length, 5);
      assert.is(members.filter((m) => m.isLearner).length, 1, "one learner stays a learner");
      assert.is(watch.maxVoters, 5, "never more voters than --voters");
      // One at a time: the leader proposed each promotion after the one before it had applied. (The polled history
      // above cannot show it: the 4-voter state can last less than one poll on a loaded machine.)
      // From every member's log: leadership may move while six agents start on a small machine.
      const agents = [...founders, ...learners];
      const proposed = agents.flatMap((agent) => promotionsProposed(agent.logs())).sort((a, b) => a - b);
      assert.equal(proposed, [3, 4], leader.logs());
      // The cluster of 5 voters commits through any member.
      for (const agent of agents) assert.is((await put(agent.clientUrl, `/w/${agent.name}`, "ok")).status, 200);
    },
  );
});

test("a learner that is behind is never promoted, even with a voter missing; it is once it caught up", async () => {
  await withFounders(
    "membership-promotion-behind",
    ["b1", "b2", "b3"],
    { voters: 3 },
    async ({ fixture, founders, leader }) => {
      const learner = await fixture.defineJoiner("lag", leader.clientUrl, 3);
      await learner.start();
      await waitFor("the learner published its name", async () =>
        (await memberList(leader.clientUrl)).some((m) => m.name === "lag"),
      );
      const learnerId = await memberIdOf(learner);
      // Frozen, it stops acknowledging: the leader sees it neither active nor at the head of the log.
      process.kill(learner.pid!, "SIGSTOP");
      try {
        for (let i = 0; i < 300; i += 50) {
          await Promise.all(Array.from({ length: 50 }, (_, k) => put(leader.clientUrl, `/behind/${i + k}`, "v")));
        }
        const victim = founders.find((a) => a !== leader)!;
        assert.is(
          (await api(leader.clientUrl, "/v3/cluster/member/remove", { ID: await memberIdOf(victim) })).status,
          200,
        );
        await victim.kill("SIGKILL");
        // Several promotion rounds (every 500 ms) with 2 voters of 3 wanted: the frozen learner must stay a learner.
        await new Promise((r) => setTimeout(r, 2000));
        const during = (await memberList(leader.clientUrl)).find((m) => m.ID === learnerId);
        assert.ok(during?.isLearner, "a learner behind was promoted");
        // An explicit promotion is refused the same way, with etcd's error.
        const asked = await api(leader.clientUrl, "/v3/cluster/member/promote", { ID: learnerId });
        assert.is(asked.body.error, "etcdserver: can only promote a learner member which is in sync with leader");
      } finally {
        process.kill(learner.pid!, "SIGCONT");
      }
      const resumedMs = Date.now();
      await waitFor(
        "the learner is promoted once it caught up",
        // proto3 JSON omits a false isLearner.
        async () => (await memberList(leader.clientUrl)).find((m) => m.ID === learnerId)?.isLearner !== true,
        10_000,
      );
      note(`a learner behind, resumed: promoted ${Date.now() - resumedMs} ms later`);
      // Promotion asks for 90% of the log, not all of it: the rest arrives just after.
      const countBehind = async () =>
        (
          await api(learner.clientUrl, "/v3/kv/range", {
            key: Buffer.from("/behind/").toString("base64"),
            range_end: Buffer.from("/behind0").toString("base64"),
            count_only: true,
            serializable: true,
          })
        ).body.count;
      await waitFor("the promoted learner has every write", async () => (await countBehind()) === "300", 10_000);
    },
  );
});

test.run();
