// Leases across failures, on a 3-member vigie cluster and a 3-member etcd 3.4 cluster side by side: every scenario
// runs against both and asserts what etcd does. etcd keeps lease deadlines on the leader only, and a member that
// becomes leader (after a kill -9, a SIGSTOP, a loss of quorum, a restart of every member) first gives every lease a
// full TTL again; no lease expires early because leadership moved. Bounds are generous (a loaded 2-core machine):
// "keys still there 2 s after the new leader", "DELETE events within 20 s", never a tight timing.
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { call } from "../helpers/api-client.js";
import { waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import {
  type Cluster,
  countKeys,
  DeleteWatch,
  deletesSeen,
  grantWithKeys,
  leaderOf,
  type Member,
  ok,
  renewOnce,
  sleep,
  startEtcd,
  startVigie,
  timeToLive,
} from "./lease-kit.js";

const TTL_SECONDS = 5;
/** Longer than the TTL: a member that kept the old deadlines would expire the lease while it is stopped. */
const STOPPED_MS = 6_000;
const DELETES_WITHIN_MS = 20_000;

const tools = requireTools("lease failover", "etcd");
let clusters: Cluster[] = [];

test.before(async () => {
  if (tools === undefined) return;
  clusters = await Promise.all([startVigie(), startEtcd(tools.etcd!)]);
});

test.after(async () => {
  await Promise.all(clusters.map((c) => c.cleanup()));
});

/** Runs `scenario` against vigie and etcd at once; a failure names the cluster. */
async function bothClusters(scenario: (cluster: Cluster) => Promise<void>): Promise<void> {
  if (tools === undefined) return;
  await Promise.all(
    clusters.map((cluster) =>
      scenario(cluster).catch(async (error: unknown) => {
        const logFile = join(tmpdir(), `lease-failover-${cluster.label}-${process.pid}.log`);
        await writeFile(logFile, cluster.members.map((m, i) => `==== member ${i}\n${m.logs()}`).join("\n"));
        throw new Error(`${cluster.label}: ${(error as Error).message} (member logs: ${logFile})`, { cause: error });
      }),
    ),
  );
}

async function leaderAndFollowers(cluster: Cluster): Promise<{ leader: Member; followers: Member[] }> {
  const leader = await leaderOf(cluster);
  return { leader, followers: cluster.members.filter((m) => m !== leader) };
}

const signal = (member: Member, name: "SIGSTOP" | "SIGCONT") => process.kill(member.pid(), name);

test("field by field on a follower: grant, time-to-live (with keys), keepalive, list and revoke match etcd", async () => {
  const bodies = new Map<string, unknown[]>();
  await bothClusters(async (cluster) => {
    const { followers } = await leaderAndFollowers(cluster);
    const url = followers[0]!.clientUrl;
    const id = await grantWithKeys(url, 10, ["/fields/a", "/fields/b"]);
    const strip = (body: Record<string, unknown>) => {
      const text = JSON.stringify(body).replaceAll(id, "<id>");
      const copy = JSON.parse(text) as Record<string, unknown>;
      // etcd lists a lease's keys in no particular order (vigie sorts them).
      if (Array.isArray(copy.keys)) copy.keys = (copy.keys as string[]).sort();
      delete copy.header;
      delete (copy.result as Record<string, unknown> | undefined)?.header;
      return copy;
    };
    const answers: unknown[] = [];
    const add = async (path: string, body: unknown) => {
      const answer = await call(url, path, body);
      answers.push([path, answer.status, answer.json === undefined ? answer.text : strip(answer.json)]);
    };
    // A moment after the grant: etcd reports the remaining time rounded down (granted 10, remaining 9).
    await add("/v3/lease/timetolive", { ID: id });
    await add("/v3/lease/timetolive", { ID: id, keys: true });
    await add("/v3/lease/grant", { ID: id, TTL: 10 });
    await add("/v3/lease/grant", { TTL: 1 });
    await add("/v3/lease/grant", { TTL: 9_000_000_001 });
    await add("/v3/lease/keepalive", { ID: id });
    await add("/v3/lease/keepalive", { ID: "777" });
    await add("/v3/lease/timetolive", { ID: "777", keys: true });
    await add("/v3/lease/revoke", { ID: "777" });
    const listed = (await ok(url, "/v3/lease/leases", {})).leases as { ID: string }[];
    answers.push(["listed", listed.some((l) => l.ID === id)]);
    await add("/v3/lease/revoke", { ID: id });
    await add("/v3/lease/timetolive", { ID: id, keys: true });
    answers.push(["keys left", await countKeys(url, "/fields/")]);
    bodies.set(cluster.label, answers);
  });
  if (tools === undefined) return;
  const ids = /"ID":"\d+"/g;
  const vigie = JSON.stringify(bodies.get("vigie")).replace(ids, '"ID":"<new>"');
  const etcd = JSON.stringify(bodies.get("etcd")).replace(ids, '"ID":"<new>"');
  assert.is(vigie, etcd);
});

test("kill -9 of the leader: the leased keys outlive the failover by a full TTL, then go with DELETE events", async () => {
  await bothClusters(async (cluster) => {
    const { leader, followers } = await leaderAndFollowers(cluster);
    const url = followers[0]!.clientUrl;
    const id = await grantWithKeys(url, TTL_SECONDS, ["/kill/a", "/kill/b"]);
    const watch = await DeleteWatch.open(url, "/kill/");
    try {
      assert.is(await renewOnce(url, id), TTL_SECONDS);
      const renewedAtMs = Date.now();
      await leader.kill();
      await leaderOf(cluster, followers);
      await sleep(2_000);
      assert.is(await countKeys(url, "/kill/"), 2, "keys still there 2 s after the new leader");
      assert.ok((await timeToLive(url, id)) > 0, "the lease is still alive");
      const deletedAtMs = await deletesSeen(watch, 2, DELETES_WITHIN_MS);
      assert.ok(
        deletedAtMs - renewedAtMs >= TTL_SECONDS * 1000 - 500,
        `keys deleted ${deletedAtMs - renewedAtMs} ms after the last keepalive, before the TTL`,
      );
      assert.is(await countKeys(url, "/kill/"), 0);
      assert.is(await timeToLive(url, id), -1);
    } finally {
      watch.close();
      await leader.restart();
    }
  });
});

// vigie only: etcd 3.4.23 (the one installed here) fails this scenario. Its follower waits on a frozen leader until
// "request timed out" (7 s) instead of renewing on the new leader, and the old leader, waking up, revokes leases it
// thinks expired through the new leader (etcd issue 15247, fixed in etcd 3.4.28): measured, 2 of 6 SIGSTOP/SIGCONT
// cycles lost their leases although every lease was renewed on the new leader all along.
test("a SIGSTOPped leader: keepalives through a follower reach the new leader; no revoke when it wakes", async () => {
  const cluster = clusters.find((c) => c.label === "vigie");
  if (cluster === undefined) return;
  const { leader, followers } = await leaderAndFollowers(cluster);
  const url = followers[0]!.clientUrl;
  // Two leases: TTL 5 and the minimum (2 s), whose deadline on the frozen leader passes long before it wakes.
  const leases = [
    { id: await grantWithKeys(url, TTL_SECONDS, ["/stop/a", "/stop/b"]), ttl: TTL_SECONDS },
    { id: await grantWithKeys(url, 2, ["/stop/c", "/stop/d", "/stop/e"]), ttl: 2 },
  ];
  const watch = await DeleteWatch.open(url, "/stop/");
  // A renewal through the follower that finds the old leader frozen must be answered by the new leader (or by the
  // follower itself once elected), not fail and not say the lease is gone.
  let renewing = true;
  const renewals = (async () => {
    while (renewing) {
      for (const lease of leases) assert.is(await renewOnce(url, lease.id), lease.ttl, "a keepalive answered");
      await sleep(500);
    }
  })();
  renewals.catch(() => {}); // awaited below; a failure must not crash the run before that
  try {
    await sleep(500);
    signal(leader, "SIGSTOP");
    try {
      await sleep(STOPPED_MS);
    } finally {
      signal(leader, "SIGCONT");
    }
    await sleep(2_000);
    // The old leader's clock says both leases expired long ago: waking up, it must not revoke them.
    assert.is(await countKeys(url, "/stop/"), 5, "keys still there 2 s after the old leader woke up");
    assert.is(watch.deletedAtMs.length, 0);
  } finally {
    renewing = false;
    await renewals;
  }
  try {
    await deletesSeen(watch, 5, DELETES_WITHIN_MS);
    // The old leader applies the revoke on its own, possibly a commit round after the follower the watch is on.
    await waitFor(
      "the keys gone on the old leader too",
      async () => (await countKeys(leader.clientUrl, "/stop/")) === 0,
    );
  } finally {
    watch.close();
  }
});

test("no quorum while the TTL passes: no revoke without a leader; a full TTL once quorum is back", async () => {
  await bothClusters(async (cluster) => {
    const { leader, followers } = await leaderAndFollowers(cluster);
    const url = leader.clientUrl;
    const id = await grantWithKeys(url, TTL_SECONDS, ["/quorum/a", "/quorum/b"]);
    const watch = await DeleteWatch.open(url, "/quorum/");
    try {
      assert.is(await renewOnce(url, id), TTL_SECONDS);
      for (const follower of followers) signal(follower, "SIGSTOP");
      try {
        await sleep(STOPPED_MS);
        const left = await countKeys(url, "/quorum/");
        assert.is(left, 2, `not revoked without a quorum (${left} keys left, ${watch.deletedAtMs.length} DELETEs)`);
      } finally {
        for (const follower of followers) signal(follower, "SIGCONT");
      }
      await leaderOf(cluster);
      await sleep(2_000);
      assert.is(await countKeys(url, "/quorum/"), 2, "keys still there 2 s after quorum came back");
      assert.is(watch.deletedAtMs.length, 0);
      await deletesSeen(watch, 2, DELETES_WITHIN_MS);
      assert.is(await timeToLive(url, id), -1);
    } finally {
      watch.close();
    }
  });
});

test("kill -9 of every member and a restart: leases come back with a full TTL, then expire", async () => {
  await bothClusters(async (cluster) => {
    const { followers } = await leaderAndFollowers(cluster);
    const id = await grantWithKeys(followers[0]!.clientUrl, TTL_SECONDS, ["/restart/a", "/restart/b"]);
    assert.is(await renewOnce(followers[0]!.clientUrl, id), TTL_SECONDS);
    await Promise.all(cluster.members.map((m) => m.kill()));
    await Promise.all(cluster.members.map((m) => m.restart()));
    const leader = await leaderOf(cluster);
    const watch = await DeleteWatch.open(leader.clientUrl, "/restart/");
    try {
      assert.ok((await timeToLive(leader.clientUrl, id)) > 0, "the lease survived the restart");
      await sleep(2_000);
      assert.is(await countKeys(leader.clientUrl, "/restart/"), 2, "keys still there 2 s after the restart");
      await deletesSeen(watch, 2, DELETES_WITHIN_MS);
      assert.is(await timeToLive(leader.clientUrl, id), -1);
    } finally {
      watch.close();
    }
  });
});

test.run();
