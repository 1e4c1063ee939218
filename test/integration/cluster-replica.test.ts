// Real `vigie agent` processes on loopback: a 3-voter cluster plus 2 learners; writes through any member; kill -9
// of the leader during a write load (no acknowledged write lost, a new leader serves within 2 s); the old leader
// restarts and catches up; a new learner joins with --join, catches up by snapshot, and is promoted after a voter
// is removed.
import { existsSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreClient } from "../../src/store/client.js";
import { type AgentProcess, ClusterFixture, VIGIE_CLI } from "../helpers/cluster.js";
import { waitFor } from "../helpers/ports.js";

const clients: StoreClient[] = [];
function clientOf(...agents: AgentProcess[]): StoreClient {
  const client = new StoreClient({ endpoints: agents.map((a) => a.clientUrl), requestTimeoutMs: 3000 });
  clients.push(client);
  return client;
}

async function leaderOf(agents: AgentProcess[]): Promise<AgentProcess> {
  return waitFor(
    "a leader",
    async () => {
      for (const agent of agents) {
        if (!agent.alive()) continue;
        const status = await clientOf(agent)
          .status()
          .catch(() => undefined);
        if (status !== undefined && status.leader !== "0" && status.leader === status.header.memberId) return agent;
      }
      return undefined;
    },
    10_000,
  );
}

const startedMs = Date.now();
function step(what: string): void {
  if (process.env.VIGIE_TEST_VERBOSE) console.log(`  +${Date.now() - startedMs} ms: ${what}`);
}

async function revisionOf(agent: AgentProcess): Promise<number> {
  const answer = await clientOf(agent).range("/", { prefix: true, serializable: true, countOnly: true });
  return answer.header.revision;
}

test("3 voters + 2 learners: writes anywhere, leader kill -9, restart, join by snapshot, promotion", async () => {
  if (!existsSync(VIGIE_CLI)) throw new Error(`${VIGIE_CLI} is missing: run npm run build first`);
  const fixture = await ClusterFixture.create("cluster", { VIGIE_SNAPSHOT_COUNT: "200" });
  try {
    const voters = await fixture.startStatic(["v1", "v2", "v3"], 3);
    const learners: AgentProcess[] = [];
    for (const name of ["l1", "l2"]) {
      const learner = await fixture.defineJoiner(name, voters[0]!.clientUrl, 3);
      await learner.start();
      learners.push(learner);
    }
    const all = [...voters, ...learners];
    const list = await waitFor("every member published its name", async () => {
      const answer = await clientOf(voters[1]!).memberList();
      return answer.members.every((m) => m.name !== "") ? answer : undefined;
    });
    assert.is(list.members.length, 5);
    assert.equal(
      list.members
        .filter((m) => m.isLearner)
        .map((m) => m.name)
        .sort(),
      ["l1", "l2"],
    );

    // Writes through every member (learners forward to the leader), visible on every member.
    for (const agent of all) await clientOf(agent).put(`/any/${agent.name}`, agent.name);
    for (const agent of all) {
      const { kvs } = await clientOf(agent).range("/any/", { prefix: true });
      assert.equal(
        kvs.map((kv) => kv.value.toString()).sort(),
        all.map((a) => a.name).sort(),
        `reads on ${agent.name}`,
      );
    }

    // kill -9 of the leader during a write load.
    const leader = await leaderOf(voters);
    const others = all.filter((a) => a !== leader);
    const acknowledged: string[] = [];
    let loading = true;
    const writers = others.slice(0, 4).map(async (agent, w) => {
      const client = clientOf(agent);
      for (let i = 0; loading; i++) {
        const key = `/load/${w}/${i}`;
        try {
          await client.put(key, "x");
          acknowledged.push(key);
        } catch {
          // Not acknowledged: a real client retries, after a pause (retrying at once would keep the two cores busy
          // while the survivors elect); only acknowledged writes must survive.
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    await leader.kill("SIGKILL");
    const killedAtMs = Date.now();
    const survivorClient = clientOf(...voters.filter((v) => v !== leader));
    await waitFor("a new leader serving writes", () => survivorClient.put("/after-kill", "ok").then(() => true), 2000);
    const unavailableMs = Date.now() - killedAtMs;
    await new Promise((r) => setTimeout(r, 300));
    loading = false;
    await Promise.all(writers);
    const newLeader = await leaderOf(voters.filter((v) => v !== leader));
    const stored = await clientOf(newLeader).range("/load/", { prefix: true, keysOnly: true });
    const storedKeys = new Set(stored.kvs.map((kv) => kv.key.toString()));
    const lost = acknowledged.filter((key) => !storedKeys.has(key));
    assert.equal(lost, [], `${lost.length} acknowledged writes lost of ${acknowledged.length}`);
    assert.ok(acknowledged.length > 10, `the load made progress (${acknowledged.length} writes)`);
    console.log(
      `  leader kill: a new leader served a write ${unavailableMs} ms later; ${acknowledged.length} writes kept`,
    );

    // The old leader restarts from its data dir and catches up.
    step("restart the old leader");
    await leader.start();
    const target = await revisionOf(newLeader);
    await waitFor("the old leader catches up", async () => (await revisionOf(leader)) >= target, 10_000);

    // A new learner joins after the log was compacted (snapshot every 200 entries): it catches up by snapshot.
    step("bulk writes");
    const bulk = clientOf(newLeader);
    for (let i = 0; i < 250; i += 25) {
      await Promise.all(Array.from({ length: 25 }, (_, j) => bulk.put(`/bulk/${i + j}`, String(i + j))));
    }
    const l3 = await fixture.defineJoiner("l3", newLeader.clientUrl, 3);
    step("join l3");
    await l3.start();
    const revision = await revisionOf(newLeader);
    await waitFor("the new learner catches up", async () => (await revisionOf(l3)) >= revision, 10_000);
    const metrics = await (await fetch(`${l3.clientUrl}/metrics`)).text();
    assert.match(metrics, /vigie_server_snapshots_restored_total [1-9]/, "l3 was brought up to date by a snapshot");
    const bulkOnL3 = await clientOf(l3).range("/bulk/", { prefix: true, serializable: true, countOnly: true });
    assert.is(bulkOnL3.count, 250);

    // Remove a voter that is not the leader: the cluster wants 3 voters, so a caught-up learner is promoted.
    step("remove a voter");
    const victim = voters.find((v) => v !== newLeader && v.alive())!;
    const victimId = (await clientOf(victim).status()).header.memberId;
    await clientOf(newLeader).memberRemove(victimId);
    await victim.stop();
    await waitFor(
      "a learner promoted to voter",
      async () => {
        const members = (await clientOf(newLeader).memberList()).members;
        return members.filter((m) => !m.isLearner).length === 3 && members.length === 5;
      },
      10_000,
    );
    await clientOf(...learners, l3).put("/after-promotion", "ok");
  } catch (error) {
    for (const agent of fixture.agents) console.error(`---- ${agent.name}\n${agent.logs().slice(-3000)}`);
    throw error;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await fixture.cleanup();
  }
});

test.run();
