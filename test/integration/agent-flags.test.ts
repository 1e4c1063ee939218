// `vigie agent`'s settings as an operator meets them, on the built binary: every agent setting given in the YAML
// file (and a flag winning over it), the /health and /metrics a running agent serves, a client-role agent that has
// nothing else to do, and the clear error and non-zero exit that each usual mistake gets before anything runs.
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { VIGIE_CLI } from "../helpers/cluster.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { findExecutable } from "../helpers/require-tool.js";
import { AgentKit, stop } from "./agent-kit.js";

const kit = new AgentKit("agent-flags");
test.before(() => kit.setUp());
test.after(() => kit.tearDown());

test("every agent setting can come from the YAML file; a flag wins over it", async () => {
  const fileClient = `http://127.0.0.1:${await freePort()}`;
  const flagClient = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const dataDir = join(kit.dir, "from-yaml-data");
  const config = join(kit.dir, "agent.yaml");
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
  const agent = kit.start(["--config", config, "--listen-client", flagClient, "--log-level", "info"]);
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

test("a client-role agent with nothing else to do runs until SIGTERM", async () => {
  // No --listen-client, no templates, no services: nothing of its own keeps node busy. It used to exit at once with
  // node's code 13 and no message.
  const agent = kit.start(["--store-endpoints", `http://127.0.0.1:${await freePort()}`, "--log-level", "info"]);
  await waitFor("agent running", async () => agent.output().includes('"msg":"agent running"'), 10_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.is(agent.child.exitCode, null, `still running: ${agent.output()}`);
  assert.is(await stop(agent), 0, agent.output());

  // With --listen-client it serves /health and /metrics, routed like the embedded replica's API.
  const client = `http://127.0.0.1:${await freePort()}`;
  const served = kit.start(["--store-endpoints", "http://127.0.0.1:1", "--listen-client", client]);
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
  const joinerListen = [
    "--listen-client",
    `http://127.0.0.1:${await freePort()}`,
    "--listen-peer",
    `http://127.0.0.1:${await freePort()}`,
    "--log-level",
    "warn",
  ];
  await writeFile(join(kit.dir, "a-file"), "not a directory\n");
  await writeFile(join(kit.dir, "typo.yaml"), "name: a\ndata-dir: /tmp/x\n");
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
        args: ["--config", join(kit.dir, "typo.yaml"), ...listen],
        code: 3,
        message: `vigie: ${join(kit.dir, "typo.yaml")}:2:1: data-dir: unknown field "data-dir" (did you mean "data_dir"?)\n`,
      },
      {
        args: ["--dev", "--listen-client", busyUrl, "--listen-peer", peer, "--log-level", "warn"],
        code: 1,
        message: `vigie: cannot listen on --listen-client ${busyUrl}: the address is already in use\n`,
      },
      {
        args: ["--data-dir", join(kit.dir, "a-file"), ...listen],
        code: 1,
        message: `vigie: --data-dir ${join(kit.dir, "a-file")}: it is not a directory\n`,
      },
      {
        // Its own ports: the cases run at once, and a joiner listens before it asks (another case that got as far
        // as listening made this one fail with "address already in use", seen in a stress run).
        args: ["--name", "j", "--data-dir", join(kit.dir, "joiner"), "--join", unreachable, ...joinerListen],
        code: 1,
        message: `vigie: --join ${unreachable}: cannot list the cluster's members: store unreachable`,
      },
    ];
    const results = await Promise.all(cases.map((c) => kit.fails(c.args)));
    for (const [index, result] of results.entries()) {
      const expected = cases[index]!;
      assert.is(result.code, expected.code, `${expected.args.join(" ")}: ${result.output}`);
      if (expected.message.endsWith("\n")) assert.is(result.output, expected.message);
      else assert.ok(result.output.startsWith(expected.message), result.output);
    }
    assert.not.ok(existsSync(join(kit.dir, "joiner", "member.json")), "a failed join leaves no identity behind");
  } finally {
    await new Promise((resolve) => busy.close(resolve));
  }
});

test("a data dir this user cannot write is refused, naming --data-dir", async () => {
  const locked = join(kit.dir, "locked");
  await mkdir(join(locked, "data"), { recursive: true });
  await chmod(join(locked, "data"), 0o555);
  const listen = ["--listen-client", `http://127.0.0.1:${await freePort()}`];
  listen.push("--listen-peer", `http://127.0.0.1:${await freePort()}`);
  const args = ["--data-dir", join(locked, "data"), ...listen];
  // root may write anywhere: run the agent as "nobody" then, as an operator's unprivileged service would be.
  const asRoot = process.getuid?.() === 0;
  const runuser = findExecutable("runuser");
  assert.ok(!asRoot || runuser, "runuser (util-linux) is needed to run the agent as another user");
  if (asRoot) await chmod(kit.dir, 0o755); // mkdtemp's 0700 would hide the whole tree from "nobody"
  const agent = asRoot
    ? kit.start(args, runuser!, ["-u", "nobody", "--", process.execPath, VIGIE_CLI])
    : kit.start(args);
  const code = await agent.exited;
  assert.is(code, 1, agent.output());
  assert.match(
    agent.output(),
    `vigie: --data-dir ${join(locked, "data")}: it is not readable and writable by this user`,
  );
});

test.run();
