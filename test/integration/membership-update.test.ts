// member update on a cluster of real agents: a follower is given a new peer URL (a TCP proxy in front of its peer
// port, as when a member moves behind a port mapping) with `vigie member update` sent through another follower.
// Every member must list the new URL and reach the follower there only (cutting the proxy cuts it off), the change
// must survive a restart of the leader (replayed from its log), and bad URLs are refused (etcd 3.4 takes anything
// there, even an empty list, and the member is then unreachable for good). The response shapes and the errors etcd
// shares are checked against etcd itself in the API suite (test/helpers/api-suite-more.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CuttableProxy } from "../fixtures/sidecar/proxy.js";
import { runCliAgainst } from "../helpers/cli-process.js";
import { AgentProcess } from "../helpers/cluster.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { api, leaderOf, memberIdOf, memberList, put, serializableValue, withFounders } from "./membership-kit.js";

test("member update moves a follower to a new peer URL: the cluster reaches it there, also after a restart", async () => {
  await withFounders("membership-update", ["u1", "u2", "u3"], { voters: 3 }, async ({ founders, leader }) => {
    const [moving, via] = founders.filter((a) => a !== leader);
    const proxy = new CuttableProxy(new URL(moving!.spec.peerUrl));
    proxy.port = await freePort();
    await proxy.open();
    try {
      const proxied = `http://127.0.0.1:${proxy.port}`;
      const id = BigInt(await memberIdOf(moving!)).toString(16);
      const cli = await runCliAgainst(via!.clientUrl, ["member", "update", id, "--peer-urls", proxied]);
      assert.is(cli.code, 0, cli.stderr);
      // Ids print as etcdctl prints them: 16 hex digits.
      const printed = new RegExp(`^Member ${id.padStart(16, "0")} updated in cluster [0-9a-f]{16}\\n$`);
      assert.match(cli.stdout.toString(), printed);
      for (const member of founders) {
        await waitFor(`${member.name} lists the new peer URL`, async () => {
          const listed = (await memberList(member.clientUrl)).find((m) => m.name === moving!.name);
          return listed?.peerURLs?.[0] === proxied;
        });
      }

      assert.is((await put(leader.clientUrl, "/moved", "one")).status, 200);
      await waitFor("the moved follower gets writes through its new URL", async () => {
        return (await serializableValue(moving!.clientUrl, "/moved")) === "one";
      });
      await proxy.cut();
      assert.is((await put(leader.clientUrl, "/moved", "two")).status, 200);
      await new Promise((r) => setTimeout(r, 1000));
      assert.is(await serializableValue(moving!.clientUrl, "/moved"), "one", "nothing reaches it but the new URL");
      await proxy.open();
      await waitFor("the moved follower catches up once its URL answers again", async () => {
        return (await serializableValue(moving!.clientUrl, "/moved")) === "two";
      });

      // The change is in the log: a restarted leader replays it and still reaches the follower there.
      await leader.kill("SIGKILL");
      await leader.start();
      const listed = (await memberList(leader.clientUrl)).find((m) => m.name === moving!.name);
      assert.equal(listed?.peerURLs, [proxied]);
      const newLeader = await leaderOf(founders);
      assert.is((await put(newLeader.clientUrl, "/moved", "three")).status, 200);
      await waitFor("the moved follower still replicates after the restart", async () => {
        return (await serializableValue(moving!.clientUrl, "/moved")) === "three";
      });

      // What etcd 3.4 would take and then never reach the member at: refused, nothing changed.
      const memberId = await memberIdOf(moving!);
      for (const peerURLs of [[], ["bad"], ["http://127.0.0.1:2380/path"]]) {
        const refused = await api(via!.clientUrl, "/v3/cluster/member/update", { ID: memberId, peerURLs });
        assert.equal(
          refused.body,
          {
            error: "etcdserver: given member URLs are invalid",
            message: "etcdserver: given member URLs are invalid",
            code: 3,
          },
          JSON.stringify(peerURLs),
        );
        assert.is(refused.status, 400);
      }
      // Another member's URL spelled with a trailing slash is still that member's URL; ID 0 is nobody.
      const taken = `${via!.spec.peerUrl}/`;
      const clash = await api(via!.clientUrl, "/v3/cluster/member/update", { ID: memberId, peerURLs: [taken] });
      assert.equal([clash.status, clash.body.code], [412, 9], JSON.stringify(clash.body));
      const nobody = await api(via!.clientUrl, "/v3/cluster/member/update", { ID: "0", peerURLs: [proxied] });
      assert.equal([nobody.status, nobody.body.error], [404, "etcdserver: member not found"]);
      const bad = await runCliAgainst(via!.clientUrl, ["member", "update", id, "not-a-url"]);
      assert.is(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, 'member update: "not-a-url" is not a peer URL like http://127.0.0.1:2380');
      const after = (await memberList(via!.clientUrl)).find((m) => m.name === moving!.name);
      assert.equal(after?.peerURLs, [proxied]);
    } finally {
      await proxy.cut();
    }
  });
});

test("moving a member as the README says: member update, then a restart on the new URL with the old flags", async () => {
  await withFounders("membership-move", ["w1", "w2", "w3"], { voters: 3 }, async ({ fixture, founders, leader }) => {
    const moving = founders.find((a) => a !== leader)!;
    const moved = `http://127.0.0.1:${await freePort()}`;
    const id = BigInt(await memberIdOf(moving)).toString(16);
    const update = await runCliAgainst(leader.clientUrl, ["member", "update", id, moved]);
    assert.is(update.code, 0, update.stderr);
    await moving.stop();
    // Its --initial-cluster still names the old URL: a restart ignores it, as etcd's does.
    const restarted = new AgentProcess({ ...moving.spec, peerUrl: moved });
    fixture.agents.push(restarted);
    await restarted.start();
    assert.is((await put(leader.clientUrl, "/moved/w", "there")).status, 200);
    await waitFor("the moved member replicates at its new URL", async () => {
      return (await serializableValue(restarted.clientUrl, "/moved/w")) === "there";
    });
    // No false alarm: it is where the cluster knows it, and its founders are the same.
    assert.not.match(restarted.logs(), "the cluster knows this member at");
    assert.not.match(restarted.logs(), "belongs to another cluster");
  });
});

test.run();
