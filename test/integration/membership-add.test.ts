// member add on a cluster of real agents, compared with what etcd 3.4 answers: a peer URL already taken is refused
// ("etcdserver: Peer URLs already exists", code 9), and the same URL added twice at the same moment (through the
// leader twice, or through two members) makes one member, never two sharing a URL (etcd: one added, the other
// refused with code 9). Two learners joining with --join at the same moment both get in and catch up, and member
// list on a learner shows the whole cluster (etcd refuses it there: "rpc not supported for learner"; vigie serves it
// from the learner's own table, which is what a sidecar needs).
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AgentProcess } from "../helpers/cluster.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { api, b64, memberList, note, put, type WireMember, withFounders } from "./membership-kit.js";

const PEER_URL_EXISTS = { error: "etcdserver: Peer URLs already exists", code: 9 };

function withUrl(members: WireMember[], url: string): WireMember[] {
  return members.filter((m) => m.peerURLs?.includes(url));
}

test("member add: a taken peer URL is refused; the same URL added twice at once makes one member", async () => {
  await withFounders("membership-add", ["a1", "a2", "a3"], { voters: 3 }, async ({ founders: agents, leader }) => {
    const followers = agents.filter((a) => a !== leader);
    const founderUrl = (await memberList(leader.clientUrl)).find((m) => m.name === followers[0]!.name)!.peerURLs![0]!;
    for (const via of [leader, followers[0]!]) {
      const taken = await api(via.clientUrl, "/v3/cluster/member/add", { peerURLs: [founderUrl] });
      assert.is(taken.status, 412, JSON.stringify(taken.body)); // etcd 3.4 answers 412 too (FailedPrecondition)
      assert.is(taken.body.error, PEER_URL_EXISTS.error);
      assert.is(taken.body.code, PEER_URL_EXISTS.code);
    }

    for (const [label, vias] of [
      ["through the leader twice", [leader, leader]],
      ["through two followers", followers],
      ["through the leader and a follower", [leader, followers[1]!]],
    ] as Array<[string, AgentProcess[]]>) {
      const url = `http://127.0.0.1:${await freePort()}`;
      const answers = await Promise.all(
        vias.map((via) => api(via.clientUrl, "/v3/cluster/member/add", { peerURLs: [url], isLearner: true })),
      );
      note(`same URL added twice ${label}: ${answers.map((a) => `${a.status} ${a.body.error ?? "added"}`).join(", ")}`);
      const members = await waitFor("every member applied the adds", async () => {
        const lists = await Promise.all(agents.map((a) => memberList(a.clientUrl)));
        const counts = lists.map((list) => list.length);
        return counts.every((n) => n === counts[0]) ? lists[0] : undefined;
      });
      assert.is(withUrl(members, url).length, 1, `${label}: ${JSON.stringify(withUrl(members, url))}`);
      const added = answers.filter((a) => a.status === 200);
      assert.is(added.length, 1, `${label}: exactly one add succeeds: ${JSON.stringify(answers.map((a) => a.body))}`);
      const refused = answers.find((a) => a.status !== 200)!;
      assert.is(refused.body.code, 9, JSON.stringify(refused.body));
      // Removed again so the next round starts from the founders alone (unstarted learners are harmless).
      const id = withUrl(members, url)[0]!.ID;
      assert.is((await api(leader.clientUrl, "/v3/cluster/member/remove", { ID: id })).status, 200);
    }
    assert.is((await memberList(leader.clientUrl)).length, 3);
    assert.is((await put(leader.clientUrl, "/still", "writable")).status, 200);
  });
});

test("two learners joining at the same moment both get in and catch up; member list works on a learner", async () => {
  await withFounders(
    "membership-join-twice",
    ["j1", "j2", "j3"],
    { voters: 3, env: { VIGIE_SNAPSHOT_COUNT: "100" } },
    async ({ fixture, founders: agents, leader }) => {
      for (let i = 0; i < 150; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, k) => put(leader.clientUrl, `/data/${i + k}`, "v")));
      }
      // Both ask different members, at once.
      const learners = await Promise.all([
        fixture.defineJoiner("l1", agents[0]!.clientUrl, 3),
        fixture.defineJoiner("l2", agents[1]!.clientUrl, 3),
      ]);
      const joinedAtMs = Date.now();
      await Promise.all(learners.map((l) => l.start()));
      const revision = Number((await api(leader.clientUrl, "/v3/kv/range", { key: b64("/") })).body.header.revision);
      for (const learner of learners) {
        await waitFor(`${learner.name} catches up`, async () => {
          const answer = await api(learner.clientUrl, "/v3/kv/range", {
            key: b64("/data/"),
            range_end: b64("/data0"),
            serializable: true,
            count_only: true,
          });
          return Number(answer.body.header.revision) >= revision && answer.body.count === "150";
        });
      }
      note(`two learners joined at once and caught up ${Date.now() - joinedAtMs} ms after starting`);
      const list = await waitFor("both learners published their names", async () => {
        const members = await memberList(leader.clientUrl);
        return members.filter((m) => m.name === "l1" || m.name === "l2").length === 2 ? members : undefined;
      });
      assert.is(list.length, 5);
      assert.equal(
        list
          .filter((m) => m.isLearner)
          .map((m) => m.name)
          .sort(),
        ["l1", "l2"],
      );

      // member list asked of a learner: the whole cluster, itself a learner, the same as the leader's.
      const onLearner = await memberList(learners[0]!.clientUrl);
      assert.equal(onLearner, list);
      // A change made elsewhere reaches the learner's list.
      const l2 = list.find((m) => m.name === "l2")!;
      assert.is((await api(agents[2]!.clientUrl, "/v3/cluster/member/remove", { ID: l2.ID })).status, 200);
      await waitFor("the learner's list drops l2", async () =>
        (await memberList(learners[0]!.clientUrl)).every((m) => m.ID !== l2.ID),
      );
      // A write through a learner is forwarded to the leader.
      assert.is((await put(learners[0]!.clientUrl, "/via-learner", "ok")).status, 200);
    },
  );
});

test.run();
