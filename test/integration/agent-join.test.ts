// `vigie agent` meeting a cluster, on the built binary: --join refusing what it cannot join (an etcd cluster, a web
// page) before it changes anything there, a joiner whose peer port is busy failing before the cluster adds it, and a
// restart whose --initial-cluster describes another cluster than its data dir's.
import { existsSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startEtcd } from "../helpers/etcd.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import { AgentKit, stop } from "./agent-kit.js";

const kit = new AgentKit("agent-join");
test.before(() => kit.setUp());
test.after(() => kit.tearDown());

test("--join refuses an etcd cluster before adding itself there, and a web server in one line", async () => {
  const tools = requireTools("agent-flags --join etcd", "etcd");
  if (!tools) return;
  const etcd = await startEtcd();
  const page = createHttpServer((_request, response) => {
    response
      .writeHead(501, { "content-type": "text/html" })
      .end("<!DOCTYPE HTML>\n<html>\n<p>Unsupported</p>\n</html>\n");
  });
  await new Promise<void>((resolve) => page.listen(0, "127.0.0.1", resolve));
  const pageUrl = `http://127.0.0.1:${(page.address() as { port: number }).port}`;
  try {
    const listen = async () => [
      "--listen-client",
      `http://127.0.0.1:${await freePort()}`,
      "--listen-peer",
      `http://127.0.0.1:${await freePort()}`,
    ];
    const joined = await kit.fails([
      "--name",
      "j",
      "--data-dir",
      join(kit.dir, "join-etcd"),
      "--join",
      etcd.clientUrl,
      ...(await listen()),
    ]);
    assert.is(joined.code, 1, joined.output);
    assert.match(joined.output, `vigie: --join ${etcd.clientUrl}: the cluster there is not a vigie cluster (`);
    assert.match(joined.output, "start the agent with --store-endpoints instead\n");
    const list = (await (
      await fetch(`${etcd.clientUrl}/v3/cluster/member/list`, { method: "POST", body: "{}" })
    ).json()) as {
      members: unknown[];
    };
    assert.is(list.members.length, 1, "no learner was added to etcd's cluster");

    const web = await kit.fails([
      "--name",
      "w",
      "--data-dir",
      join(kit.dir, "join-web"),
      "--join",
      pageUrl,
      ...(await listen()),
    ]);
    assert.is(web.code, 1, web.output);
    assert.is(
      web.output,
      `vigie: --join ${pageUrl}: cannot list the cluster's members: ` +
        "/v3/cluster/member/list: HTTP 501 with a body that is not JSON: <!DOCTYPE HTML>\n",
    );
  } finally {
    await new Promise((resolve) => page.close(resolve));
    await etcd.stop();
  }
});

test("a joiner whose peer port is busy fails before the cluster adds it", async () => {
  const seedClient = `http://127.0.0.1:${await freePort()}`;
  const seedPeer = `http://127.0.0.1:${await freePort()}`;
  const seed = await kit.startHealthy(["--dev", "--listen-peer", seedPeer, "--log-level", "warn"], seedClient);
  const busy: Server = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const busyPeer = `http://127.0.0.1:${(busy.address() as { port: number }).port}`;
  try {
    const args = ["--name", "late", "--data-dir", join(kit.dir, "late-data"), "--join", seedClient];
    args.push("--listen-client", `http://127.0.0.1:${await freePort()}`, "--listen-peer", busyPeer);
    const joiner = await kit.fails([...args, "--log-level", "warn"]);
    assert.is(joiner.code, 1, joiner.output);
    assert.is(joiner.output, `vigie: cannot listen on --listen-peer ${busyPeer}: the address is already in use\n`);
    const list = (await (
      await fetch(`${seedClient}/v3/cluster/member/list`, { method: "POST", body: "{}" })
    ).json()) as {
      members: unknown[];
    };
    assert.is(list.members.length, 1, "no unstarted learner left in the cluster");
    assert.not.ok(existsSync(join(kit.dir, "late-data", "member.json")), "no identity bound to the busy peer URL");
  } finally {
    await new Promise((resolve) => busy.close(resolve));
    await stop(seed);
  }
});

test("two joiners started at once on one empty data dir: one joins, the other stops before adding itself", async () => {
  const seedClient = `http://127.0.0.1:${await freePort()}`;
  const seedPeer = `http://127.0.0.1:${await freePort()}`;
  const seed = await kit.startHealthy(["--dev", "--listen-peer", seedPeer, "--log-level", "warn"], seedClient);
  try {
    const dataDir = join(kit.dir, "twice-data");
    const joiners = await Promise.all(
      [0, 1].map(async () => ({
        clientUrl: `http://127.0.0.1:${await freePort()}`,
        args: ["--name", "twice", "--data-dir", dataDir, "--join", seedClient, "--log-level", "warn"],
        peer: `http://127.0.0.1:${await freePort()}`,
      })),
    );
    const started = joiners.map((j) => kit.start([...j.args, "--listen-client", j.clientUrl, "--listen-peer", j.peer]));
    // The first to take the data dir runs on; the other must end, naming the lock, within seconds.
    const firstEnded = await Promise.race(started.map(async (agent, i) => ({ i, code: await agent.exited })));
    assert.is(firstEnded.code, 1, started[firstEnded.i]!.output());
    assert.match(started[firstEnded.i]!.output(), / in use by process \d+ \(lock file /);
    const winner = joiners[1 - firstEnded.i]!;
    await waitFor("the other joiner's health", async () => (await fetch(`${winner.clientUrl}/health`)).status === 200);
    const names = async () => {
      const list = (await (
        await fetch(`${seedClient}/v3/cluster/member/list`, { method: "POST", body: "{}" })
      ).json()) as { members: Array<{ name?: string }> };
      return list.members.map((member) => member.name ?? "");
    };
    // A member's name shows once it has started and published it, which may come after its /health answers.
    await waitFor("the joiner's name in the member list", async () => (await names()).includes("twice"));
    // Not a third, unstarted learner (no name yet) added by the joiner that then found the data dir taken.
    assert.is((await names()).length, 2, `members: ${JSON.stringify(await names())}`);
    assert.is(await stop(started[1 - firstEnded.i]!), 0);
  } finally {
    await stop(seed);
  }
});

test("a restart whose --initial-cluster describes another cluster than the data dir's is warned about", async () => {
  const client = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const other = `http://127.0.0.1:${await freePort()}`;
  const base = [
    "--name",
    "a",
    "--data-dir",
    join(kit.dir, "restart-data"),
    "--listen-peer",
    peer,
    "--log-level",
    "warn",
  ];
  const first = await kit.startHealthy([...base, "--initial-cluster", `a=${peer}`], client);
  assert.is(await stop(first), 0, first.output());
  const same = await kit.startHealthy([...base, "--initial-cluster", `a=${peer}`], client);
  assert.is(await stop(same), 0, same.output());
  assert.not.match(same.output(), "another cluster", "the same flags: no warning");
  // No --initial-cluster at all on a restart, on another peer port: nothing to compare, no warning either.
  const otherPeer = `http://127.0.0.1:${await freePort()}`;
  const otherPort = base.map((arg) => (arg === peer ? otherPeer : arg));
  const bare = await kit.startHealthy(otherPort, client);
  assert.is(await stop(bare), 0, bare.output());
  assert.not.match(bare.output(), "another cluster", "no --initial-cluster: no warning");
  // Like etcd, a restart ignores --initial-cluster; here it names a cluster of two the data dir never was.
  const changed = await kit.startHealthy([...base, "--initial-cluster", `a=${peer},b=${other}`], client);
  assert.is(await stop(changed), 0, changed.output());
  assert.match(changed.output(), /"level":40,.*"msg":"the data dir belongs to another cluster than --initial-cluster/);
});

test.run();
