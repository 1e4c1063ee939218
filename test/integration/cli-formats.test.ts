// What the CLI client prints, run as real processes (dist/cli.js) against a real `vigie agent --dev`: the exact
// `-w json` and lines that etcdctl 3.4 prints (checked against etcdctl and etcd 3.4), how watch and keep-alive end
// on a signal, and `render --once [--dry]`.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CLI, interruptAfterFirstLine, useDevAgent } from "../helpers/cli-process.js";

const agent = useDevAgent(test);
const cli = agent.cli;

test("watch and lease keep-alive die of the signal that stopped them, like etcdctl (the shell sees 130)", async () => {
  await cli(["put", "/formats/k", "v"]);
  const grant = await cli(["lease", "grant", "60"]);
  const id = /^lease ([0-9a-f]{16}) granted/.exec(grant.stdout.toString())?.[1];
  assert.ok(id, grant.stdout.toString());
  const keepAlive = await interruptAfterFirstLine(agent.url(), ["lease", "keep-alive", id], "SIGINT");
  assert.equal([keepAlive.code, keepAlive.signal, keepAlive.stderr], [null, "SIGINT", ""]);
  const watch = await interruptAfterFirstLine(agent.url(), ["watch", "/formats/k", "--rev", "1"], "SIGTERM");
  assert.equal([watch.code, watch.signal, watch.stderr], [null, "SIGTERM", ""]);
  assert.is(watch.stdout.toString().split("\n")[0], "PUT");
});

test("-w json prints what etcdctl prints: flat lease grant, no zero revision in member list, no watch_id", async () => {
  const grant = JSON.parse((await cli(["lease", "grant", "60", "-w", "json"])).stdout.toString()) as Record<
    string,
    unknown
  >;
  assert.equal(Object.keys(grant), ["cluster_id", "member_id", "revision", "raft_term", "ID", "TTL"]);
  const list = JSON.parse((await cli(["member", "list", "-w", "json"])).stdout.toString()) as {
    header: Record<string, unknown>;
  };
  assert.equal(Object.keys(list.header), ["cluster_id", "member_id", "raft_term"]);
  const simple = (await cli(["member", "list", "-w", "simple"])).stdout.toString();
  assert.match(
    simple,
    new RegExp(`^[0-9a-f]{16}, started, dev, http://127\\.0\\.0\\.1:\\d+, ${agent.url()}, false\\n$`),
  );
  const watch = await interruptAfterFirstLine(
    agent.url(),
    ["watch", "/formats/k", "--rev", "1", "-w", "json"],
    "SIGINT",
  );
  const event = JSON.parse(watch.stdout.toString().split("\n")[0]!) as Record<string, unknown>;
  assert.equal(Object.keys(event), ["Header", "Events", "CompactRevision", "Canceled", "Created"]);
});

test("watch -w json from a compacted revision prints the canceled answer (with CompactRevision) like etcdctl", async () => {
  const put = JSON.parse((await cli(["put", "/formats/c", "1", "-w", "json"])).stdout.toString()) as {
    header: { revision: number };
  };
  const compacted = await fetch(`${agent.url()}/v3/kv/compaction`, {
    method: "POST",
    body: JSON.stringify({ revision: String(put.header.revision) }),
  });
  assert.is(compacted.status, 200, await compacted.text());
  const watch = await cli(["watch", "/formats/c", "--rev", "1", "-w", "json"]);
  assert.is(watch.code, 1);
  const answer = JSON.parse(watch.stdout.toString()) as Record<string, unknown>;
  assert.equal(
    [answer.Events, answer.CompactRevision, answer.Canceled],
    [[], put.header.revision, true],
    watch.stdout.toString(),
  );
  assert.match(watch.stderr, `vigie: watch canceled: revision 1 is compacted (oldest is ${put.header.revision})`);
});

test("lease timetolive [--keys] and lease list print etcdctl's lines and JSON", async () => {
  const granted = await cli(["lease", "grant", "90"]);
  const id = /^lease ([0-9a-f]{16}) granted/.exec(granted.stdout.toString())?.[1];
  assert.ok(id, granted.stdout.toString());
  await cli(["put", "/formats/leased", "v", "--lease", id]);
  const [plain, keys, json, list, listJson, gone] = await Promise.all([
    cli(["lease", "timetolive", id]),
    cli(["lease", "timetolive", id, "--keys"]),
    cli(["lease", "timetolive", id, "--keys", "-w", "json"]),
    cli(["lease", "list"]),
    cli(["lease", "list", "-w", "json"]),
    cli(["lease", "timetolive", "1234"]),
  ]);
  assert.match(plain.stdout.toString(), new RegExp(`^lease ${id} granted with TTL\\(90s\\), remaining\\(\\d+s\\)\\n$`));
  assert.match(keys.stdout.toString(), /, remaining\(\d+s\), attached keys\(\[\/formats\/leased\]\)\n$/);
  const parsed = JSON.parse(json.stdout.toString()) as Record<string, unknown>;
  assert.equal(
    [parsed.id, parsed["granted-ttl"], parsed.keys],
    [Number.parseInt(id, 16), 90, [Buffer.from("/formats/leased").toString("base64")]],
  );
  assert.match(list.stdout.toString(), /^found \d+ leases\n/);
  assert.ok(list.stdout.toString().split("\n").includes(id), list.stdout.toString());
  const leases = (JSON.parse(listJson.stdout.toString()) as { leases: Array<{ id: number }> }).leases;
  assert.ok(leases.some((lease) => lease.id === Number.parseInt(id, 16)));
  assert.is(gone.stdout.toString(), "lease 0000000000001234 already expired\n");
});

test("render --once [--dry]: stdout or the file; exit 1 when a template fails, 4 when the store is unreachable", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-cli-render-"));
  try {
    await writeFile(join(dir, "db.hbs"), 'master={{key "/formats/db/master"}}\n');
    const config = join(dir, "vigie.yaml");
    await writeFile(config, `templates:\n  - source: db.hbs\n    destination: ${join(dir, "db.conf")}\n`);
    const missing = await cli(["render", "--once", "--dry", "--config", config]);
    assert.equal([missing.code, missing.stdout.toString()], [1, ""]);
    assert.match(missing.stderr, `key \\"/formats/db/master\\" does not exist`);
    await cli(["put", "/formats/db/master", "10.0.0.7"]);
    const dry = await cli(["render", "--once", "--dry", "--config", config]);
    assert.equal([dry.code, dry.stdout.toString()], [0, "master=10.0.0.7\n"]);
    assert.not.ok(existsSync(join(dir, "db.conf")), "--dry writes nothing");
    assert.is((await cli(["render", "--once", "--config", config])).code, 0);
    assert.is(await readFile(join(dir, "db.conf"), "utf8"), "master=10.0.0.7\n");
    const down = spawn(process.execPath, [
      CLI,
      "render",
      "--once",
      "--config",
      config,
      "--endpoints",
      "http://127.0.0.1:1",
    ]);
    assert.is(await new Promise((resolve) => down.once("exit", resolve)), 4, "unavailable, like every client command");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
