// The CLI client commands (`vigie get|put|del|watch|lease|member|status`), run as real processes from the built
// `dist/cli.js` against a store's client URL. One body for etcd (test/integration/cli-etcd.test.ts) and vigie.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { ApiTarget } from "./api-suite.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runCli(args: string[], timeoutMs = 15_000): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const output = collect(child);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  return { code, ...output };
}

function collect(child: ChildProcess): { stdout: string; stderr: string } {
  const out = { stdout: "", stderr: "" };
  child.stdout?.on("data", (chunk: Buffer) => {
    out.stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    out.stderr += chunk.toString();
  });
  return out;
}

/** A long-running command (watch, keepalive): read its output as it comes, then SIGINT it. */
class LongRun {
  readonly child: ChildProcess;
  readonly output: { stdout: string; stderr: string };
  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    this.output = collect(this.child);
  }
  async waitForLines(count: number, timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.output.stdout.split("\n").filter((line) => line !== "");
      if (lines.length >= count) return lines;
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`expected ${count} lines, got ${JSON.stringify(this.output)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  /** SIGINTs the command; resolves with its exit code, or the signal that killed it (etcdctl dies of SIGINT). */
  async interrupt(): Promise<number | string | null> {
    const exited = new Promise<number | string | null>((resolve) => this.child.once("exit", (c, s) => resolve(c ?? s)));
    this.child.kill("SIGINT");
    return await exited;
  }
}

export function defineCliSuite(name: string, start: () => Promise<ApiTarget | undefined>): void {
  const test = suite<{ target: ApiTarget | undefined }>(name, { target: undefined });
  let endpoints: string[] = [];
  const cli = (...args: string[]) => runCli([...args, "--endpoints", endpoints.join(",")]);
  const check = (title: string, body: () => Promise<void>) =>
    test(title, async (context) => {
      if (context.target === undefined) return;
      await body();
    });

  test.before(async (context) => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
    context.target = await start();
    // A dead endpoint first: every command must fail over to the live one.
    if (context.target !== undefined) endpoints = ["http://127.0.0.1:1", context.target.url];
  });
  test.after(async (context) => {
    await context.target?.stop();
  });

  check("put, get (simple and json), prefix, keys-only, limit, rev", async () => {
    assert.equal(await cli("put", "/cli/a", "hello"), { code: 0, stdout: "OK\n", stderr: "" });
    const second = await cli("put", "/cli/a", "world", "--prev-kv");
    assert.equal(second, { code: 0, stdout: "OK\n/cli/a\nhello\n", stderr: "" });
    await cli("put", "/cli/b", "two");
    assert.is((await cli("get", "/cli/a")).stdout, "/cli/a\nworld\n");
    assert.is((await cli("get", "/cli/", "--prefix")).stdout, "/cli/a\nworld\n/cli/b\ntwo\n");
    // etcdctl prints an empty line after each key.
    assert.is((await cli("get", "/cli/", "--prefix", "--keys-only")).stdout, "/cli/a\n\n/cli/b\n\n");
    assert.is((await cli("get", "/cli/", "--prefix", "--limit", "1", "--consistency", "s")).stdout, "/cli/a\nworld\n");
    const json = JSON.parse((await cli("get", "/cli/a", "-w", "json")).stdout) as {
      header: { revision: number; cluster_id: number };
      kvs: Array<{ key: string; value: string; version: number; mod_revision: number; create_revision: number }>;
      count: number;
    };
    assert.is(typeof json.header.cluster_id, "number");
    assert.equal(
      { key: json.kvs[0]!.key, value: json.kvs[0]!.value, version: json.kvs[0]!.version, count: json.count },
      {
        key: Buffer.from("/cli/a").toString("base64"),
        value: Buffer.from("world").toString("base64"),
        version: 2,
        count: 1,
      },
    );
    const old = await cli("get", "/cli/a", "--rev", String(json.kvs[0]!.create_revision));
    assert.is(old.stdout, "/cli/a\nhello\n");
    assert.is((await cli("get", "/cli/none")).stdout, "");
  });

  check("del with prefix and prev-kv; errors name the endpoint and etcd's message", async () => {
    assert.equal(await cli("del", "/cli/", "--prefix", "--prev-kv"), {
      code: 0,
      stdout: "2\n/cli/a\nworld\n/cli/b\ntwo\n",
      stderr: "",
    });
    assert.is((await cli("del", "/cli/none")).stdout, "0\n");
    const future = await cli("get", "/cli/a", "--rev", "100000");
    assert.is(future.code, 1);
    assert.is(future.stderr, `vigie: ${endpoints[1]}: etcdserver: mvcc: required revision is a future revision\n`);
    const dead = await runCli(["get", "/cli/a", "--endpoints", "http://127.0.0.1:1"]);
    assert.is(dead.code, 4);
    assert.match(dead.stderr, /^vigie: no endpoint answered \(http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
    const badLease = await cli("put", "/cli/a", "v", "--lease", "xyz");
    assert.is(badLease.code, 2);
    assert.match(badLease.stderr, /--lease expects a hexadecimal ID/);
  });

  check("put --ignore-value keeps the value, --ignore-lease the lease; both need the key to exist", async () => {
    const granted = await cli("lease", "grant", "60");
    const id = /^lease ([0-9a-f]{16}) granted/.exec(granted.stdout)?.[1];
    assert.ok(id, `grant output: ${JSON.stringify(granted)}`);
    // Attached to the lease; a put that keeps the lease changes the value and leaves the key attached.
    assert.is((await cli("put", "/cli/ign/kept", "v1", "--lease", id)).code, 0);
    assert.equal(await cli("put", "/cli/ign/kept", "v2", "--ignore-lease", "--prev-kv"), {
      code: 0,
      stdout: "OK\n/cli/ign/kept\nv1\n",
      stderr: "",
    });
    // Attached too; a put that keeps the value, given no lease, detaches it.
    assert.is((await cli("put", "/cli/ign/detached", "v1", "--lease", id)).code, 0);
    assert.equal(await cli("put", "/cli/ign/detached", "--ignore-value"), { code: 0, stdout: "OK\n", stderr: "" });
    assert.is((await cli("get", "/cli/ign/", "--prefix")).stdout, "/cli/ign/detached\nv1\n/cli/ign/kept\nv2\n");
    assert.is((await cli("lease", "revoke", id)).code, 0);
    assert.is(
      (await cli("get", "/cli/ign/", "--prefix")).stdout,
      "/cli/ign/detached\nv1\n",
      "the revoke took the kept one",
    );
    const missing = await cli("put", "/cli/ign/none", "--ignore-value");
    assert.equal(missing, { code: 1, stdout: "", stderr: `vigie: ${endpoints[1]}: etcdserver: key not found\n` });
    const both = await cli("put", "/cli/ign/detached", "v3", "--ignore-value");
    assert.is(both.code, 2);
    assert.match(both.stderr, /--ignore-value takes no VALUE/);
    const leaseToo = await cli("put", "/cli/ign/detached", "v3", "--ignore-lease", "--lease", id);
    assert.is(leaseToo.code, 2);
    assert.match(leaseToo.stderr, /--ignore-lease takes no --lease/);
    assert.is((await cli("del", "/cli/ign/", "--prefix")).stdout, "1\n");
  });

  check("lease grant, put --lease, keepalive until SIGINT, revoke deletes the key", async () => {
    const granted = await cli("lease", "grant", "60");
    const match = /^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n$/.exec(granted.stdout);
    assert.ok(match, `grant output: ${JSON.stringify(granted)}`);
    const id = match[1]!;
    assert.is(match[2], "60");
    assert.is((await cli("put", "/cli/leased", "v", "--lease", id)).code, 0);
    const keepalive = new LongRun(["lease", "keepalive", id, "--endpoints", endpoints.join(",")]);
    const lines = await keepalive.waitForLines(1);
    assert.is(lines[0], `lease ${id} keepalived with TTL(60)`);
    assert.is(await keepalive.interrupt(), "SIGINT");
    assert.equal(await cli("lease", "revoke", id), { code: 0, stdout: `lease ${id} revoked\n`, stderr: "" });
    assert.is((await cli("get", "/cli/leased")).stdout, "");
    const gone = await cli("lease", "revoke", id);
    assert.equal(
      { code: gone.code, stderr: gone.stderr },
      {
        code: 1,
        stderr: `vigie: ${endpoints[1]}: etcdserver: requested lease not found\n`,
      },
    );
    const expired = await cli("lease", "keepalive", id);
    assert.equal(
      { code: expired.code, stderr: expired.stderr },
      {
        code: 1,
        stderr: `vigie: lease ${id} expired or revoked\n`,
      },
    );
  });

  check("watch prints PUT/DELETE events (and history with --rev) until SIGINT", async () => {
    const first = await cli("put", "/cli/w/1", "a");
    assert.is(first.code, 0);
    const json = JSON.parse((await cli("get", "/cli/w/1", "-w", "json")).stdout) as { header: { revision: number } };
    const watch = new LongRun([
      "watch",
      "/cli/w/",
      "--prefix",
      "--rev",
      String(json.header.revision),
      "--endpoints",
      endpoints.join(","),
    ]);
    await watch.waitForLines(3);
    await cli("put", "/cli/w/2", "b");
    await cli("del", "/cli/w/1");
    const lines = await watch.waitForLines(7);
    assert.equal(lines, ["PUT", "/cli/w/1", "a", "PUT", "/cli/w/2", "b", "DELETE", "/cli/w/1"].slice(0, lines.length));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // etcdctl prints a deleted key's (empty) value line too.
    assert.equal(watch.output.stdout, "PUT\n/cli/w/1\na\nPUT\n/cli/w/2\nb\nDELETE\n/cli/w/1\n\n");
    assert.is(await watch.interrupt(), "SIGINT");
    await cli("del", "/cli/w/", "--prefix");
  });

  check("-w json for put, del, lease grant and watch; watch --prev-kv prints the previous value first", async () => {
    const put = JSON.parse((await cli("put", "/cli/j", "1", "-w", "json")).stdout) as { header: { revision: number } };
    assert.ok(put.header.revision > 1);
    const again = JSON.parse((await cli("put", "/cli/j", "2", "--prev-kv", "-w", "json")).stdout) as {
      header: { revision: number };
      prev_kv: { value: string; mod_revision: number };
    };
    assert.equal(again.prev_kv.value, Buffer.from("1").toString("base64"));
    assert.is(again.prev_kv.mod_revision, put.header.revision);
    const grant = JSON.parse((await cli("lease", "grant", "30", "-w", "json")).stdout) as { ID: number; TTL: number };
    assert.is(grant.TTL, 30);
    assert.ok(Number.isInteger(grant.ID) && grant.ID > 0);
    // Both watches start at the next revision, so the put below reaches them however long they take to start.
    const next = String(again.header.revision + 1);
    const watch = new LongRun(["watch", "/cli/j", "--prev-kv", "--rev", next, "--endpoints", endpoints.join(",")]);
    const watchJson = new LongRun(["watch", "/cli/j", "-w", "json", "--rev", next, "--endpoints", endpoints.join(",")]);
    await cli("put", "/cli/j", "3");
    assert.equal(await watch.waitForLines(5), ["PUT", "/cli/j", "2", "/cli/j", "3"]);
    const [line] = await watchJson.waitForLines(1);
    const event = JSON.parse(line!) as { Events: Array<{ kv: { value: string }; type?: number }> };
    assert.is(event.Events[0]!.kv.value, Buffer.from("3").toString("base64"));
    assert.is(event.Events[0]!.type, undefined, "PUT is the default event type");
    assert.is(await watch.interrupt(), "SIGINT");
    assert.is(await watchJson.interrupt(), "SIGINT");
    const del = JSON.parse((await cli("del", "/cli/j", "-w", "json")).stdout) as { deleted: number };
    assert.is(del.deleted, 1);
  });

  check("member list and status: one row per member", async () => {
    const list = await cli("member", "list", "-w", "json");
    assert.is(list.code, 0);
    const parsed = JSON.parse(list.stdout) as { members: Array<{ ID: number; name: string; clientURLs: string[] }> };
    assert.is(parsed.members.length, 1);
    assert.ok(parsed.members[0]!.clientURLs.includes(endpoints[1]!));
    const table = await cli("member", "list");
    assert.match(table.stdout, /\| ID +\| STATUS +\| NAME +\| PEER ADDRS +\| CLIENT ADDRS +\| IS LEARNER \|/);
    assert.match(table.stdout, new RegExp(`\\| [0-9a-f]{16} \\| started \\| ${parsed.members[0]!.name} +\\|`));
    const status = await cli("status");
    assert.is(status.code, 0, status.stderr);
    const rows = status.stdout.split("\n").filter((line) => line.startsWith("| ") && !line.startsWith("| NAME"));
    assert.is(rows.length, 1);
    const cells = rows[0]!.split("|").map((cell) => cell.trim());
    assert.equal(cells.slice(3, 5), ["leader", "true"]);
    assert.is(cells[8], endpoints[1]);
    const statusJson = JSON.parse((await cli("status", "-w", "json")).stdout) as Array<{
      role: string;
      Endpoint: string;
    }>;
    assert.equal(
      statusJson.map((row) => [row.role, row.Endpoint]),
      [["leader", endpoints[1]]],
    );
  });

  test.run();
}
