// Replicas in one process, talking over real loopback HTTP through the peer transport: a 3-voter cluster, writes
// through any member, a crashed leader replaced, a restarted member catching up, a learner that joins, catches up
// by snapshot and is promoted when a voter leaves.

import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../../src/log.js";
import { MetricsRegistry } from "../../../src/metrics.js";
import { type RunningReplica, startReplica } from "../../../src/store/node.js";
import { freePort, waitFor } from "../../helpers/ports.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

interface Spec {
  name: string;
  peerUrl: string;
  dataDir: string;
}

const timing = { tickMs: 20, electionTicks: 10, requestTimeoutMs: 4000 };

const registries = new Map<string, MetricsRegistry>();

function start(spec: Spec, extra: { initialCluster?: string; join?: string; voters?: number; electionTicks?: number }) {
  const metrics = new MetricsRegistry();
  registries.set(spec.dataDir, metrics);
  return startReplica({
    name: spec.name,
    dataDir: spec.dataDir,
    listenPeerUrl: spec.peerUrl,
    clientUrl: `http://client-of-${spec.name}.invalid:2379`,
    voters: extra.voters ?? 3,
    initialCluster: extra.initialCluster,
    join: extra.join,
    logger: silentLogger(),
    metrics,
    timing: { ...timing, electionTicks: extra.electionTicks ?? timing.electionTicks },
    snapshotEveryEntries: 50,
  });
}

async function leaderOf(replicas: RunningReplica[]): Promise<RunningReplica> {
  return waitFor("a leader", async () => replicas.find((r) => r.status().role === "leader"), 20_000);
}

/** The smallest stand-in for the client API that `--join` talks to (member list/add), backed by a real replica. */
async function memberApi(target: () => RunningReplica): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString() || "{}") as { peerURLs?: string[]; isLearner?: boolean };
    const replica = target();
    const wire = (m: { ID: number; name: string; peerURLs: string[]; clientURLs: string[]; isLearner: boolean }) => ({
      ...m,
      ID: String(m.ID),
    });
    const header = { cluster_id: String(replica.clusterId), member_id: String(replica.memberId), raft_term: "1" };
    if (req.url === "/v3/cluster/member/list") {
      res.end(JSON.stringify({ header, members: (await replica.members()).map(wire) }));
    } else if (req.url === "/v3/cluster/member/add") {
      const added = await replica.addMember(body.peerURLs ?? [], body.isLearner === true);
      res.end(JSON.stringify({ header, member: wire(added.member), members: added.members.map(wire) }));
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}`, server };
}

const cluster = suite("3-voter cluster over loopback HTTP");
let root = "";
let specs: Spec[] = [];
let replicas: RunningReplica[] = [];
let initialCluster = "";

cluster.before(async () => {
  root = await mkdtemp(join(tmpdir(), "vigie-cluster-"));
  specs = [];
  for (const name of ["n1", "n2", "n3"]) {
    specs.push({ name, peerUrl: `http://127.0.0.1:${await freePort()}`, dataDir: join(root, name) });
  }
  initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(",");
  replicas = await Promise.all(specs.map((s) => start(s, { initialCluster })));
});

cluster.after(async () => {
  await Promise.all(replicas.map((r) => r.close()));
  await rm(root, { recursive: true, force: true });
});

cluster("elects one leader; writes through a follower reach every member", async () => {
  const leader = await leaderOf(replicas);
  const follower = replicas.find((r) => r !== leader)!;
  const put = await follower.propose({ type: "put", request: { key: enc("/k"), value: enc("v1") } });
  assert.ok(put.header.revision >= 2);
  for (const r of replicas) {
    await r.linearizableBarrier();
    assert.is(dec(r.kv.range({ key: enc("/k") }).kvs[0]?.value), "v1", `${r.name} sees the write`);
  }
  const members = await follower.members();
  assert.equal(members.map((m) => m.name).sort(), ["n1", "n2", "n3"]);
  await waitFor("every member published its client URL", async () =>
    (await leader.members()).every((m) => m.clientURLs.length === 1),
  );
  assert.ok(replicas.every((r) => r.clusterId === leader.clusterId));
});

cluster("lease keepalive and time-to-live on a follower are answered by the leader", async () => {
  const leader = await leaderOf(replicas);
  const follower = replicas.find((r) => r !== leader)!;
  const grant = await follower.propose({ type: "leaseGrant", request: { TTL: 30 } });
  await follower.propose({ type: "put", request: { key: enc("/leased"), value: enc("v"), lease: grant.ID } });
  const renewed = await follower.leaseKeepAlive(grant.ID);
  assert.is(renewed.TTL, 30);
  const ttl = await follower.leaseTimeToLive({ ID: grant.ID, keys: true });
  assert.ok(ttl.TTL > 25 && ttl.TTL <= 30, `remaining ${ttl.TTL}`);
  assert.equal(ttl.keys.map(dec), ["/leased"]);
  const missing = await follower.leaseKeepAlive(424242).then(
    () => "renewed",
    (error: Error & { code?: string }) => error.code,
  );
  assert.is(missing, "VIGIE_ERR_LEASE_NOT_FOUND");
  await follower.propose({ type: "leaseRevoke", request: { ID: grant.ID } });
});

cluster("a crashed leader is replaced; no acknowledged write is lost; it catches up after a restart", async () => {
  const leader = await leaderOf(replicas);
  const acknowledged: string[] = [];
  let stop = false;
  let leaderCrashed = false;
  // Writes through every member, the leader included: what the leader acknowledged just before it crashed must
  // survive too.
  const writers = replicas.map(async (r, w) => {
    const through = r === leader ? "leader" : `follower${w}`;
    for (let i = 0; !stop; i++) {
      const key = `/load/${through}/${i}`;
      try {
        await r.propose({ type: "put", request: { key: enc(key), value: enc("x") } });
        acknowledged.push(key);
      } catch {
        // Unacknowledged: the client would retry. Only acknowledged writes must survive.
        if (r === leader && leaderCrashed) return;
      }
    }
  });
  // The crash comes once the leader and the followers have each acknowledged writes of their own.
  await waitFor("writes acknowledged through the leader and the followers", async () =>
    ["/load/leader/", "/load/follower"].every((through) => acknowledged.some((key) => key.startsWith(through))),
  );
  const index = replicas.indexOf(leader);
  leaderCrashed = true;
  await leader.close({ handOffLeadership: false }); // as abrupt as a crash: no handover
  const acknowledgedBeforeCrash = acknowledged.length;
  const survivors = replicas.filter((r) => r !== leader);
  const newLeader = await leaderOf(survivors);
  assert.is.not(newLeader.memberId, leader.memberId);
  await waitFor("writes acknowledged after the crash", async () => acknowledged.length > acknowledgedBeforeCrash);
  stop = true;
  await Promise.all(writers);
  await newLeader.linearizableBarrier();
  for (const key of acknowledged) {
    assert.is(newLeader.kv.range({ key: enc(key) }).count, 1, `acknowledged ${key} survived`);
  }
  replicas[index] = await start(specs[index]!, { initialCluster });
  const restarted = replicas[index]!;
  await waitFor("the restarted member catches up", async () => restarted.kv.revision === newLeader.kv.revision, 20_000);
  for (const key of acknowledged) assert.is(restarted.kv.range({ key: enc(key) }).count, 1);
});

cluster("a leader that stops gracefully hands leadership over at once", async () => {
  const leader = await leaderOf(replicas);
  const index = replicas.indexOf(leader);
  const spec = specs.find((s) => s.name === leader.name)!;
  await leader.close();
  const others = replicas.filter((r) => r !== leader);
  const next = others.find((r) => r.status().role === "leader");
  assert.ok(next !== undefined, "a new leader right when close() returns");
  replicas[index] = await start(spec, { initialCluster });
  await waitFor("the restarted member catches up", async () => replicas[index]!.kv.revision === next.kv.revision);
});

cluster("a member add handed to a leader that died completes once the member asked is elected itself", async () => {
  const leader = await leaderOf(replicas);
  const [asked, third] = replicas.filter((r) => r !== leader) as [RunningReplica, RunningReplica];
  const specOf = (r: RunningReplica) => specs.find((s) => s.name === r.name)!;
  // The member asked must win the election: the third one is down while the leader dies, and comes back knowing no
  // leader (so it grants votes at once) and slow to campaign itself.
  await third.close();
  await leader.close({ handOffLeadership: false }); // as abrupt as a crash
  const adding = asked.addMember([`http://127.0.0.1:${await freePort()}`], true);
  replicas[replicas.indexOf(third)] = await start(specOf(third), { initialCluster, electionTicks: 100 });
  // Before, the member asked kept "handing" the change to the leader, itself, until its timeout: leader changed.
  const { member } = await adding;
  assert.is(asked.status().role, "leader");
  assert.ok((await asked.members()).some((m) => m.ID === member.ID && m.isLearner));
  await asked.removeMember(member.ID);
  const slow = replicas.find((r) => r.name === third.name)!;
  await slow.close();
  replicas[replicas.indexOf(slow)] = await start(specOf(third), { initialCluster });
  replicas[replicas.indexOf(leader)] = await start(specOf(leader), { initialCluster });
  await waitFor("every member caught up", async () => replicas.every((r) => r.kv.revision === asked.kv.revision));
});

cluster("a promotion asked of a follower is decided by the leader, which knows how far the learner got", async () => {
  const leader = await leaderOf(replicas);
  const follower = replicas.find((r) => r !== leader)!;
  // A learner that never started: proposed by the follower itself, the promotion went through (a fourth voter that
  // holds nothing); the leader refuses it as etcd does.
  const { member: absent } = await follower.addMember([`http://127.0.0.1:${await freePort()}`], true);
  try {
    const outcome = await follower.promoteMember(absent.ID).then(
      () => "promoted",
      (error: Error & { code?: string }) => error.code,
    );
    assert.is(outcome, "VIGIE_ERR_LEARNER_NOT_READY");
    assert.ok((await leader.members()).find((m) => m.ID === absent.ID)?.isLearner, "still a learner");
  } finally {
    await leader.removeMember(absent.ID);
  }
  // A learner that caught up: promoted through the follower, which answers once the change is applied there.
  const api = await memberApi(() => replicas.find((r) => r.status().role === "leader") ?? leader);
  const spec: Spec = { name: "n5", peerUrl: `http://127.0.0.1:${await freePort()}`, dataDir: join(root, "n5") };
  const learner = await start(spec, { join: api.url });
  try {
    await waitFor("the learner catches up", async () => learner.kv.revision === leader.kv.revision, 20_000);
    await waitFor("the leader hears from the learner", async () => {
      const outcome = await follower.promoteMember(learner.memberId).then(
        () => "promoted",
        (error: Error & { code?: string }) => error.code,
      );
      if (outcome !== "promoted" && outcome !== "VIGIE_ERR_LEARNER_NOT_READY") throw new Error(String(outcome));
      return outcome === "promoted";
    });
    assert.not.ok((await follower.members()).find((m) => m.ID === learner.memberId)?.isLearner, "a voter now");
  } finally {
    api.server.close();
    await leader.removeMember(learner.memberId);
    await learner.close();
  }
});

cluster("a member asked to remove itself answers once the leader applied it, without waiting to learn it", async () => {
  const leader = await leaderOf(replicas);
  const api = await memberApi(() => replicas.find((r) => r.status().role === "leader") ?? leader);
  const spec: Spec = { name: "n6", peerUrl: `http://127.0.0.1:${await freePort()}`, dataDir: join(root, "n6") };
  const learner = await start(spec, { join: api.url });
  try {
    await waitFor("the learner catches up", async () => learner.kv.revision === leader.kv.revision, 20_000);
    // Not waiting for the learner to know itself: its own addition may be applied after the keys (a snapshot from
    // before it, then the log), and until then it answered "member not found" about itself (seen in CI under load).
    // The leader's table decides now.
    // The leader's answer is enough: waiting to apply the removal here timed out, as it may never reach this member.
    const members = await learner.removeMember(learner.memberId);
    assert.not.ok(
      members.some((m) => m.ID === learner.memberId),
      "the answer lists the members without it",
    );
    assert.not.ok(
      (await leader.members()).some((m) => m.ID === learner.memberId),
      "removed on the leader",
    );
  } finally {
    api.server.close();
    await learner.close();
  }
});

cluster("a learner joins, catches up by snapshot and is promoted once a voter is removed", async () => {
  const leader = await leaderOf(replicas);
  for (let i = 0; i < 120; i++) {
    await leader.propose({ type: "put", request: { key: enc(`/snap/${i}`), value: enc(String(i)) } });
  }
  const api = await memberApi(() => replicas.find((r) => r.status().role === "leader") ?? leader);
  try {
    const spec: Spec = { name: "n4", peerUrl: `http://127.0.0.1:${await freePort()}`, dataDir: join(root, "n4") };
    const learner = await start(spec, { join: api.url });
    replicas.push(learner);
    await waitFor("the learner catches up", async () => learner.kv.revision === leader.kv.revision, 20_000);
    assert.is(dec(learner.kv.range({ key: enc("/snap/7") }).kvs[0]?.value), "7");
    assert.ok(learner.status().isLearner);
    assert.match(registries.get(spec.dataDir)!.render(), /vigie_server_snapshots_restored_total 1/);
    // Same name, empty data dir: refused.
    await waitFor("the learner published its name", async () => (await leader.members()).some((m) => m.name === "n4"));
    const again: Spec = {
      name: "n4",
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: join(root, "n4-again"),
    };
    const refusal = await start(again, { join: api.url }).then(
      async (r) => {
        await r.close();
        return "started";
      },
      (error: Error) => error.message,
    );
    assert.match(refusal, /already in the cluster/);
    const victim = replicas.find((r) => r !== leader && r !== learner)!;
    await leader.removeMember(victim.memberId);
    await victim.close();
    replicas.splice(replicas.indexOf(victim), 1);
    await waitFor("the learner is promoted", async () => !learner.status().isLearner, 20_000);
    const members = await leader.members();
    assert.is(members.length, 3);
    assert.ok(members.every((m) => !m.isLearner));
    await learner.propose({ type: "put", request: { key: enc("/after"), value: enc("ok") } });
  } finally {
    api.server.close();
  }
});

cluster("a founding member that lost its data dir is refused instead of voting again", async () => {
  const leader = await leaderOf(replicas);
  const founder = replicas.find((r) => r !== leader && specs.some((s) => s.name === r.name))!;
  const founderId = founder.memberId;
  const spec = specs.find((s) => s.name === founder.name)!;
  await founder.close();
  replicas.splice(replicas.indexOf(founder), 1);
  await rm(spec.dataDir, { recursive: true, force: true });
  const outcome = await start(spec, { initialCluster }).then(
    async (r) => {
      await r.close();
      return "started";
    },
    (error: Error & { code?: string }) => error.code,
  );
  assert.is(outcome, "VIGIE_ERR_LOST_DATA_DIR");
  // What an operator does next: remove the lost member (it may rejoin as a new one).
  await leader.removeMember(founderId);
});

cluster("a leader that removes itself steps down; the others elect a new one and keep serving", async () => {
  const leader = await leaderOf(replicas);
  await leader.removeMember(leader.memberId);
  const others = replicas.filter((r) => r !== leader);
  const next = await leaderOf(others);
  assert.is.not(next.memberId, leader.memberId);
  await next.propose({ type: "put", request: { key: enc("/after-removal"), value: enc("ok") } });
  assert.ok(!(await next.members()).some((m) => m.ID === leader.memberId));
  await waitFor("the removed member reports it", async () => leader.status().errors.length > 0);
  await leader.close();
  replicas.splice(replicas.indexOf(leader), 1);
});

cluster.run();
