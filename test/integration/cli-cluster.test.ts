// `vigie status` and `vigie member ...` on a real 3-voter vigie cluster: three replicas (real WALs, real peer HTTP)
// each behind vigie's client API in this process, driven by the built CLI as separate processes.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../src/log.js";
import { MetricsRegistry } from "../../src/metrics.js";
import { type RunningReplica, startReplica } from "../../src/store/node.js";
import { type ApiServer, startApiServer } from "../../src/store/server/server.js";
import { startCli } from "../helpers/cli-process.js";
import { freePort, waitFor } from "../helpers/ports.js";

interface Member {
  name: string;
  clientUrl: string;
  replica: RunningReplica;
  api: ApiServer;
}

let root = "";
let members: Member[] = [];

async function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = startCli(args);
  const [code] = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

function tableRows(stdout: string): string[][] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("| "))
    .slice(1)
    .map((line) =>
      line
        .split("|")
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
}

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), "vigie-cli-cluster-"));
  const specs = await Promise.all(
    ["a", "b", "c"].map(async (name) => ({
      name,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
    })),
  );
  const initialCluster = specs.map((spec) => `${spec.name}=${spec.peerUrl}`).join(",");
  members = await Promise.all(
    specs.map(async (spec) => {
      const metrics = new MetricsRegistry();
      const replica = await startReplica({
        name: spec.name,
        dataDir: join(root, spec.name),
        listenPeerUrl: spec.peerUrl,
        clientUrl: spec.clientUrl,
        initialCluster,
        voters: 3,
        logger: silentLogger(),
        metrics,
        timing: { tickMs: 20 },
      });
      const api = await startApiServer({ replica, listenUrl: spec.clientUrl, logger: silentLogger(), metrics });
      return { name: spec.name, clientUrl: spec.clientUrl, replica, api };
    }),
  );
  await waitFor("a leader", async () => members.find((m) => m.replica.status().role === "leader"), 10_000);
});

test.after(async () => {
  for (const member of members) {
    await member.api.close();
    await member.replica.close();
  }
  await rm(root, { recursive: true, force: true });
});

test("status: one row per member, exactly one leader, asked of each member's own client URL", async () => {
  const follower = members.find((m) => m.replica.status().role !== "leader")!;
  const status = await cli("status", "--endpoints", `http://127.0.0.1:1,${follower.clientUrl}`);
  assert.is(status.code, 0, status.stderr);
  const rows = tableRows(status.stdout);
  assert.equal(rows.map((row) => row[0]).sort(), ["a", "b", "c"]);
  assert.equal(rows.map((row) => row[2]).sort(), ["follower", "follower", "leader"]);
  for (const row of rows) {
    const member = members.find((m) => m.name === row[0])!;
    assert.is(row[1], member.replica.memberId.toString(16).padStart(16, "0"));
    assert.is(row[3], String(row[2] === "leader"));
    assert.is(row[7], member.clientUrl);
  }
  assert.is(new Set(rows.map((row) => row[4])).size, 1, "one term");
});

test("writes through a follower, reads through another member", async () => {
  const followers = members.filter((m) => m.replica.status().role !== "leader");
  assert.equal(await cli("put", "/cluster/k", "v", "--endpoints", followers[0]!.clientUrl), {
    code: 0,
    stdout: "OK\n",
    stderr: "",
  });
  const read = await cli("get", "/cluster/k", "--endpoints", followers[1]!.clientUrl);
  assert.is(read.stdout, "/cluster/k\nv\n");
});

test("member add --learner, list, promote refused while not caught up, remove", async () => {
  const endpoint = members[0]!.clientUrl;
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const added = await cli("member", "add", "d", "--peer-urls", peerUrl, "--learner", "--endpoints", endpoint);
  assert.is(added.code, 0, added.stderr);
  const match = /^Member learner ([0-9a-f]{16}) added to cluster ([0-9a-f]{16})\n/.exec(added.stdout);
  assert.ok(match, added.stdout);
  const id = match[1]!;
  assert.match(added.stdout, new RegExp(`--name d --listen-peer ${peerUrl} --initial-cluster .*d=${peerUrl}`));
  const list = tableRows((await cli("member", "list", "--endpoints", endpoint)).stdout);
  assert.equal(
    list.find((row) => row[0] === id),
    [id, "unstarted", "", peerUrl, "", "true"],
  );
  const status = await cli("status", "--endpoints", endpoint);
  assert.is(status.code, 1, "a member that cannot be asked makes status fail");
  assert.ok(
    tableRows(status.stdout).some((row) => row[1] === id && row[2] === "unreachable"),
    status.stdout,
  );
  // Asked through a follower: the CLI must send it to the leader, the only member that knows the learner lags
  // (a follower proposing it skipped that check and promoted a learner that had never started).
  const leader = members.find((m) => m.replica.status().role === "leader")!;
  const follower = members.find((m) => m !== leader)!;
  const promote = await cli("member", "promote", id, "--endpoints", `http://127.0.0.1:1,${follower.clientUrl}`);
  assert.equal(
    { code: promote.code, stderr: promote.stderr },
    {
      code: 1,
      stderr: `vigie: ${leader.clientUrl}: etcdserver: can only promote a learner member which is in sync with leader\n`,
    },
  );
  const removed = await cli("member", "remove", id, "--endpoints", endpoint);
  assert.match(removed.stdout, new RegExp(`^Member ${id} removed from cluster [0-9a-f]{16}\\n$`));
  const after = tableRows((await cli("member", "list", "--endpoints", endpoint)).stdout);
  assert.is(after.length, 3);
});

test("watch resumes on the next endpoint when its member's API goes away, without losing or repeating events", async () => {
  const [first, second] = members;
  const now = JSON.parse(
    (await cli("get", "/cluster/none", "-w", "json", "--endpoints", second!.clientUrl)).stdout,
  ) as {
    header: { revision: number };
  };
  const watch = startCli([
    "watch",
    "/cluster/w/",
    "--prefix",
    "--rev",
    String(now.header.revision + 1),
    "--endpoints",
    `${first!.clientUrl},${second!.clientUrl}`,
  ]);
  await cli("put", "/cluster/w/1", "one", "--endpoints", second!.clientUrl);
  await waitFor("the first event", async () => watch.stdout().includes("one\n"), 10_000);
  await first!.api.close();
  await cli("put", "/cluster/w/2", "two", "--endpoints", second!.clientUrl);
  await waitFor("the event after the failover", async () => watch.stdout().includes("two\n"), 10_000).catch((e) => {
    throw new Error(`${e}: ${watch.stderr()}`);
  });
  watch.child.kill("SIGINT");
  assert.equal(await watch.exited, [null, "SIGINT"], `killed by SIGINT like etcdctl; ${watch.stderr()}`);
  assert.is(watch.stdout(), "PUT\n/cluster/w/1\none\nPUT\n/cluster/w/2\ntwo\n");
  assert.is(watch.stderr(), "", "moving to the next endpoint is silent");
});

test("status with one member's client API down (closed by the test above): its row says why, the exit code is 1", async () => {
  const [down, ...up] = members;
  const status = await cli("status", "--endpoints", `${down!.clientUrl},${up[0]!.clientUrl}`);
  assert.is(status.code, 1, status.stderr);
  const rows = tableRows(status.stdout);
  assert.is(rows.length, 3);
  const port = new URL(down!.clientUrl).port;
  assert.equal(rows.find((row) => row[0] === down!.name)?.slice(2), [
    "unreachable",
    "false",
    "",
    "",
    "",
    down!.clientUrl,
    `connect ECONNREFUSED 127.0.0.1:${port}`,
  ]);
  assert.equal(
    rows.filter((row) => row[0] !== down!.name).map((row) => row[8]),
    ["", ""],
  );
});

test.run();
