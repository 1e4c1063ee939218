// Members that are reached at another address than the one they listen on: each agent listens on its own loopback
// ports, and a TCP proxy in front of each port stands for a port mapping (a container's published port, a load
// balancer). The agents are told the proxies' URLs with --advertise-peer and --advertise-client, as etcd's
// --initial-advertise-peer-urls and --advertise-client-urls. The cluster must form and replicate through the
// advertised peer URLs (cutting one member's proxy cuts that member off), list the advertised URLs, let a learner
// join the same way, and `vigie status` must reach every member at its advertised client URL.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CuttableProxy } from "../fixtures/sidecar/proxy.js";
import { AgentProcess, ClusterFixture, VIGIE_CLI } from "../helpers/cluster.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { leaderOf, memberList, put, requireBuiltCli, serializableValue, withLogsOnFailure } from "./membership-kit.js";

interface MappedAgent {
  agent: AgentProcess;
  peerProxy: CuttableProxy;
  advertisedClient: string;
  advertisedPeer: string;
}

/** A proxy on a port of its own, forwarding to `target`. */
async function proxyTo(target: string): Promise<CuttableProxy> {
  const proxy = new CuttableProxy(new URL(target));
  proxy.port = await freePort();
  await proxy.open();
  return proxy;
}

/** Defines an agent listening on its own ports and advertising proxies in front of them (started by the caller). */
async function mappedAgent(fixture: ClusterFixture, name: string): Promise<MappedAgent> {
  const listenClient = `http://127.0.0.1:${await freePort()}`;
  const listenPeer = `http://127.0.0.1:${await freePort()}`;
  const clientProxy = await proxyTo(listenClient);
  const peerProxy = await proxyTo(listenPeer);
  proxies.push(clientProxy, peerProxy);
  const advertisedClient = `http://127.0.0.1:${clientProxy.port}`;
  const advertisedPeer = `http://127.0.0.1:${peerProxy.port}`;
  const agent = new AgentProcess({
    name,
    clientUrl: listenClient,
    peerUrl: listenPeer,
    dataDir: join(fixture.root, name),
    args: ["--advertise-client", advertisedClient, "--advertise-peer", advertisedPeer],
    env: {},
  });
  fixture.agents.push(agent);
  return { agent, peerProxy, advertisedClient, advertisedPeer };
}

const proxies: CuttableProxy[] = [];

test("members behind port mappings: --advertise-peer and --advertise-client are what the cluster uses", async () => {
  requireBuiltCli();
  const fixture = await ClusterFixture.create("advertise");
  try {
    await withLogsOnFailure(fixture, async () => {
      const founders = await Promise.all(["a1", "a2", "a3"].map((name) => mappedAgent(fixture, name)));
      const initial = founders.map((f) => `${f.agent.name}=${f.advertisedPeer}`).join(",");
      for (const f of founders) f.agent.spec.args.push("--initial-cluster", initial, "--voters", "3");
      await Promise.all(founders.map((f) => f.agent.start()));
      const leader = await leaderOf(founders.map((f) => f.agent));

      // Each member publishes its name and client URL once it runs (a replicated entry): wait until all three did.
      const expected = founders.map((f) => [f.agent.name, [f.advertisedPeer], [f.advertisedClient]]).sort();
      const described = (members: Awaited<ReturnType<typeof memberList>>) =>
        members.map((m) => [m.name, m.peerURLs, m.clientURLs]).sort();
      await waitFor("every founder listed at its advertised URLs", async () => {
        return JSON.stringify(described(await memberList(leader.clientUrl))) === JSON.stringify(expected);
      });
      assert.equal(described(await memberList(leader.clientUrl)), expected);
      assert.is((await put(founders[0]!.advertisedClient, "/through/proxy", "one")).status, 200);
      for (const f of founders) {
        await waitFor(`${f.agent.name} has the first write`, async () => {
          return (await serializableValue(f.agent.clientUrl, "/through/proxy")) === "one";
        });
      }

      // The peers reach a follower only through its advertised peer URL: with that proxy cut, it gets nothing new,
      // while the other two still commit.
      const cutOff = founders.find((f) => f.agent !== leader)!;
      await cutOff.peerProxy.cut();
      assert.is((await put(leader.clientUrl, "/through/proxy", "two")).status, 200);
      await new Promise((r) => setTimeout(r, 1000));
      assert.is(await serializableValue(cutOff.agent.clientUrl, "/through/proxy"), "one");
      await cutOff.peerProxy.open();
      await waitFor(`${cutOff.agent.name} catches up once its proxy is back`, async () => {
        return (await serializableValue(cutOff.agent.clientUrl, "/through/proxy")) === "two";
      });

      // A learner joins the same way: the leader adds it at its advertised peer URL and replicates to it there.
      const joiner = await mappedAgent(fixture, "a4");
      joiner.agent.spec.args.push("--join", founders[1]!.advertisedClient, "--voters", "3");
      await joiner.agent.start();
      await waitFor("the learner has the cluster's data", async () => {
        return (await serializableValue(joiner.agent.clientUrl, "/through/proxy")) === "two";
      });
      const withJoiner = await memberList(leader.clientUrl);
      const learner = withJoiner.find((m) => m.name === "a4");
      assert.equal(learner?.peerURLs, [joiner.advertisedPeer]);
      await waitFor("the learner published its advertised client URL", async () => {
        const member = (await memberList(leader.clientUrl)).find((m) => m.name === "a4");
        return member?.clientURLs?.[0] === joiner.advertisedClient;
      });

      // `vigie status` asks each member at its advertised client URL: every row answers, none unreachable.
      // Not spawnSync: the proxies run in this process and must keep forwarding while the command runs.
      const status = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          VIGIE_CLI,
          ["status", "--endpoints", founders[2]!.advertisedClient, "-w", "json"],
          { encoding: "utf8", timeout: 20_000 },
          (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }),
        );
      });
      assert.is(status.code, 0, status.stderr);
      const rows = JSON.parse(status.stdout) as Array<{ Endpoint: string; Status?: unknown }>;
      assert.equal(rows.map((row) => row.Endpoint).sort(), [...founders, joiner].map((f) => f.advertisedClient).sort());
      assert.ok(
        rows.every((row) => row.Status !== undefined),
        status.stdout,
      );
    });
  } finally {
    await Promise.all(proxies.splice(0).map((proxy) => proxy.cut()));
    await fixture.cleanup();
  }
});

test("a member restarted with a peer URL the cluster does not know it by is warned: the others use the old", async () => {
  requireBuiltCli();
  const fixture = await ClusterFixture.create("advertise-moved");
  try {
    const [agent] = await fixture.startStatic(["m1"]);
    const first = agent!.spec.peerUrl;
    await agent!.stop();
    const moved = `http://127.0.0.1:${await freePort()}`;
    const restarted = new AgentProcess({ ...agent!.spec, args: ["--advertise-peer", moved] });
    fixture.agents.push(restarted);
    await restarted.start();
    const warning = `the cluster knows this member at ${first}, not at the --advertise-peer URL it was restarted with`;
    assert.ok(restarted.logs().includes(warning), restarted.logs());
    assert.equal(
      (await memberList(restarted.clientUrl)).map((m) => m.peerURLs),
      [[first]],
    );
  } finally {
    await fixture.cleanup();
  }
});

test.run();
