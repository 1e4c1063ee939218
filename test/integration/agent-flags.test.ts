// `vigie agent`'s settings as an operator meets them, on the built binary: every agent setting given in the YAML
// file (and a flag winning over it), the /health and /metrics a running agent serves, a client-role agent that has
// nothing else to do, and the clear error and non-zero exit that each usual mistake gets before anything runs.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { VIGIE_CLI } from "../helpers/cluster.js";
import { startEtcd } from "../helpers/etcd.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { findExecutable, requireTools } from "../helpers/require-tool.js";

interface Agent {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const running: Agent[] = [];

function startAgent(args: string[], cwd: string, command = VIGIE_CLI, prefix: string[] = []): Agent {
  const child = spawn(command, [...prefix, "agent", ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const append = (chunk: Buffer) => {
    output += chunk.toString("utf8");
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const agent = { child, output: () => output, exited };
  running.push(agent);
  return agent;
}

/** Runs `vigie agent ARGS` to its end (bad input must end it within seconds) and returns its exit code and output. */
async function agentFails(args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  const agent = startAgent(args, cwd);
  const timer = setTimeout(() => agent.child.kill("SIGKILL"), 10_000);
  const code = await agent.exited;
  clearTimeout(timer);
  return { code, output: agent.output() };
}

async function stop(agent: Agent): Promise<number | null> {
  agent.child.kill("SIGTERM");
  const timer = setTimeout(() => agent.child.kill("SIGKILL"), 10_000);
  const code = await agent.exited;
  clearTimeout(timer);
  return code;
}

let dir = "";
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "vigie-agent-flags-"));
});

test.after(async () => {
  for (const agent of running) {
    if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill("SIGKILL");
    await agent.exited;
  }
  await rm(dir, { recursive: true, force: true });
});

test("every agent setting can come from the YAML file; a flag wins over it", async () => {
  const fileClient = `http://127.0.0.1:${await freePort()}`;
  const flagClient = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const dataDir = join(dir, "from-yaml-data");
  const config = join(dir, "agent.yaml");
  await writeFile(
    config,
    [
      "name: yaml-member",
      `data_dir: ${dataDir}`,
      `listen_client: ${fileClient}`,
      `listen_peer: ${peer}`,
      "initial_cluster:",
      `  yaml-member: ${peer}`,
      "voters: 1",
      "log_level: debug",
      "",
    ].join("\n"),
  );
  const agent = startAgent(["--config", config, "--listen-client", flagClient, "--log-level", "info"], dir);
  await waitFor(
    "the agent's health",
    async () => {
      if (agent.child.exitCode !== null) throw new Error(`agent exited: ${agent.output()}`);
      const response = await fetch(`${flagClient}/health`);
      return response.status === 200 && (await response.text()) === '{"health":"true"}';
    },
    15_000,
  );
  assert.ok(existsSync(join(dataDir, "member.json")), "data_dir from the file");
  const identity = JSON.parse(await readFile(join(dataDir, "member.json"), "utf8")) as { name: string };
  assert.is(identity.name, "yaml-member", "name from the file");
  const members = (await (
    await fetch(`${flagClient}/v3/cluster/member/list`, { method: "POST", body: "{}" })
  ).json()) as {
    members: Array<{ name: string; peerURLs: string[] }>;
  };
  assert.equal(
    members.members.map((m) => [m.name, m.peerURLs]),
    [["yaml-member", [peer]]],
  );
  const fileUrlAnswers = await fetch(`${fileClient}/health`).then(
    () => true,
    () => false,
  );
  assert.not.ok(fileUrlAnswers, "--listen-client replaced the file's URL");
  assert.not.match(agent.output(), '"level":20', "--log-level info replaced the file's debug");

  // /metrics: what issue 5 lists, each with a sample even before it first changes.
  await fetch(`${flagClient}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: "YQ==", value: "Yg==" }) });
  const metrics = await (await fetch(`${flagClient}/metrics`)).text();
  for (const series of [
    /^vigie_server_raft_term [1-9]/m,
    /^vigie_server_raft_commit_index [1-9]/m,
    /^vigie_server_raft_applied_index [1-9]/m,
    /^vigie_server_leader_changes_seen_total 1$/m,
    /^vigie_server_proposals_failed_total 0$/m,
    /^vigie_disk_wal_fsync_duration_seconds_bucket\{le="\+Inf"\} [1-9]/m,
    /^vigie_api_watchers 0$/m,
    /^vigie_api_request_duration_seconds_kv_put_bucket\{le="\+Inf"\} 1$/m,
  ]) {
    assert.match(metrics, series);
  }
  assert.is(await stop(agent), 0, agent.output());
});

/** Starts `vigie agent ARGS` and waits until its client API at `clientUrl` reports healthy. */
async function startHealthy(args: string[], clientUrl: string): Promise<Agent> {
  const agent = startAgent([...args, "--listen-client", clientUrl], dir);
  await waitFor(
    `health of ${clientUrl}`,
    async () => {
      if (agent.child.exitCode !== null) throw new Error(`agent exited: ${agent.output()}`);
      return (await fetch(`${clientUrl}/health`)).status === 200;
    },
    15_000,
  );
  return agent;
}

test("a restart whose --initial-cluster describes another cluster than the data dir's is warned about", async () => {
  const client = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const other = `http://127.0.0.1:${await freePort()}`;
  const base = ["--name", "a", "--data-dir", join(dir, "restart-data"), "--listen-peer", peer, "--log-level", "warn"];
  const first = await startHealthy([...base, "--initial-cluster", `a=${peer}`], client);
  assert.is(await stop(first), 0, first.output());
  const same = await startHealthy([...base, "--initial-cluster", `a=${peer}`], client);
  assert.is(await stop(same), 0, same.output());
  assert.not.match(same.output(), "another cluster", "the same flags: no warning");
  // Like etcd, a restart ignores --initial-cluster; here it names a cluster of two the data dir never was.
  const changed = await startHealthy([...base, "--initial-cluster", `a=${peer},b=${other}`], client);
  assert.is(await stop(changed), 0, changed.output());
  assert.match(changed.output(), /"level":40,.*"msg":"the data dir belongs to another cluster than --initial-cluster/);
});

test("a joiner whose peer port is busy fails before the cluster adds it", async () => {
  const seedClient = `http://127.0.0.1:${await freePort()}`;
  const seedPeer = `http://127.0.0.1:${await freePort()}`;
  const seed = await startHealthy(["--dev", "--listen-peer", seedPeer, "--log-level", "warn"], seedClient);
  const busy: Server = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const busyPeer = `http://127.0.0.1:${(busy.address() as { port: number }).port}`;
  try {
    const args = ["--name", "late", "--data-dir", join(dir, "late-data"), "--join", seedClient];
    args.push("--listen-client", `http://127.0.0.1:${await freePort()}`, "--listen-peer", busyPeer);
    const joiner = await agentFails([...args, "--log-level", "warn"], dir);
    assert.is(joiner.code, 1, joiner.output);
    assert.is(joiner.output, `vigie: cannot listen on --listen-peer ${busyPeer}: the address is already in use\n`);
    const list = (await (
      await fetch(`${seedClient}/v3/cluster/member/list`, { method: "POST", body: "{}" })
    ).json()) as {
      members: unknown[];
    };
    assert.is(list.members.length, 1, "no unstarted learner left in the cluster");
    assert.not.ok(existsSync(join(dir, "late-data", "member.json")), "no identity bound to the busy peer URL");
  } finally {
    await new Promise((resolve) => busy.close(resolve));
    await stop(seed);
  }
});

test("a client-role agent with nothing else to do runs until SIGTERM", async () => {
  // No --listen-client, no templates, no services: nothing of its own keeps node busy. It used to exit at once with
  // node's code 13 and no message.
  const agent = startAgent(["--store-endpoints", `http://127.0.0.1:${await freePort()}`, "--log-level", "info"], dir);
  await waitFor("agent running", async () => agent.output().includes('"msg":"agent running"'), 10_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.is(agent.child.exitCode, null, `still running: ${agent.output()}`);
  assert.is(await stop(agent), 0, agent.output());

  // With --listen-client it serves /health and /metrics, routed like the embedded replica's API.
  const client = `http://127.0.0.1:${await freePort()}`;
  const served = startAgent(["--store-endpoints", "http://127.0.0.1:1", "--listen-client", client], dir);
  const health = await waitFor("client-role /health", async () => fetch(`${client}/health?verbose=1`), 10_000);
  assert.equal([health.status, await health.text()], [200, '{"health":"true"}']);
  assert.is((await fetch(`${client}/metrics?x=1`)).status, 200);
  const post = await fetch(`${client}/health`, { method: "POST" });
  assert.equal([post.status, post.headers.get("allow")], [405, "GET"]);
  assert.is((await fetch(`${client}/v3/kv/range`, { method: "POST", body: "{}" })).status, 404);
  assert.is(await stop(served), 0, served.output());
});

test("each usual mistake ends the agent with a clear message and a non-zero exit", async () => {
  const client = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const listen = ["--listen-client", client, "--listen-peer", peer, "--log-level", "warn"];
  await writeFile(join(dir, "a-file"), "not a directory\n");
  await writeFile(join(dir, "typo.yaml"), "name: a\ndata-dir: /tmp/x\n");
  const busy: Server = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const busyUrl = `http://127.0.0.1:${(busy.address() as { port: number }).port}`;
  const unreachable = `http://127.0.0.1:${await freePort()}`;
  try {
    const cases: Array<{ args: string[]; code: number; message: string }> = [
      { args: ["--bogus"], code: 2, message: "error: unknown option '--bogus'" },
      { args: ["--voters", "8", "--dev", ...listen], code: 3, message: "vigie: flag --voters: must be at most 7\n" },
      {
        args: ["--dev", "--initial-cluster", `a=${peer}`, ...listen],
        code: 3,
        message:
          "vigie: flag --initial-cluster: --dev and --initial-cluster exclude each other: --dev runs a single node of its own\n",
      },
      {
        args: ["--dev", "--listen-client", "https://127.0.0.1:1", "--listen-peer", peer],
        code: 3,
        message:
          "vigie: flag --listen-client: https://127.0.0.1:1: vigie serves plain http only (no TLS): use http://, or put a TLS proxy in front\n",
      },
      {
        args: ["--config", join(dir, "typo.yaml"), ...listen],
        code: 3,
        message: `vigie: ${join(dir, "typo.yaml")}:2:1: data-dir: unknown field "data-dir" (did you mean "data_dir"?)\n`,
      },
      {
        args: ["--dev", "--listen-client", busyUrl, "--listen-peer", peer, "--log-level", "warn"],
        code: 1,
        message: `vigie: cannot listen on --listen-client ${busyUrl}: the address is already in use\n`,
      },
      {
        args: ["--data-dir", join(dir, "a-file"), ...listen],
        code: 1,
        message: `vigie: --data-dir ${join(dir, "a-file")}: it is not a directory\n`,
      },
      {
        args: ["--name", "j", "--data-dir", join(dir, "joiner"), "--join", unreachable, ...listen],
        code: 1,
        message: `vigie: --join ${unreachable}: cannot list the cluster's members: store unreachable`,
      },
    ];
    const results = await Promise.all(cases.map((c) => agentFails(c.args, dir)));
    for (const [index, result] of results.entries()) {
      const expected = cases[index]!;
      assert.is(result.code, expected.code, `${expected.args.join(" ")}: ${result.output}`);
      if (expected.message.endsWith("\n")) assert.is(result.output, expected.message);
      else assert.ok(result.output.startsWith(expected.message), result.output);
    }
    assert.not.ok(existsSync(join(dir, "joiner", "member.json")), "a failed join leaves no identity behind");
  } finally {
    await new Promise((resolve) => busy.close(resolve));
  }
});

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
    const joined = await agentFails(
      ["--name", "j", "--data-dir", join(dir, "join-etcd"), "--join", etcd.clientUrl, ...(await listen())],
      dir,
    );
    assert.is(joined.code, 1, joined.output);
    assert.match(joined.output, `vigie: --join ${etcd.clientUrl}: the cluster there is not a vigie cluster (`);
    assert.match(joined.output, "start the agent with --store-endpoints instead\n");
    const list = (await (
      await fetch(`${etcd.clientUrl}/v3/cluster/member/list`, { method: "POST", body: "{}" })
    ).json()) as {
      members: unknown[];
    };
    assert.is(list.members.length, 1, "no learner was added to etcd's cluster");

    const web = await agentFails(
      ["--name", "w", "--data-dir", join(dir, "join-web"), "--join", pageUrl, ...(await listen())],
      dir,
    );
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

test("a data dir this user cannot write is refused, naming --data-dir", async () => {
  const locked = join(dir, "locked");
  await mkdir(join(locked, "data"), { recursive: true });
  await chmod(join(locked, "data"), 0o555);
  const listen = ["--listen-client", `http://127.0.0.1:${await freePort()}`];
  listen.push("--listen-peer", `http://127.0.0.1:${await freePort()}`);
  const args = ["--data-dir", join(locked, "data"), ...listen];
  // root may write anywhere: run the agent as "nobody" then, as an operator's unprivileged service would be.
  const asRoot = process.getuid?.() === 0;
  const runuser = findExecutable("runuser");
  assert.ok(!asRoot || runuser, "runuser (util-linux) is needed to run the agent as another user");
  if (asRoot) await chmod(dir, 0o755); // mkdtemp's 0700 would hide the whole tree from "nobody"
  const agent = asRoot
    ? startAgent(args, dir, runuser!, ["-u", "nobody", "--", process.execPath, VIGIE_CLI])
    : startAgent(args, dir);
  const code = await agent.exited;
  assert.is(code, 1, agent.output());
  assert.match(
    agent.output(),
    `vigie: --data-dir ${join(locked, "data")}: it is not readable and writable by this user`,
  );
});

test.run();
