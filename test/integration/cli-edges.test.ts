// Edge inputs of the CLI client, run as real processes (dist/cli.js) against a real `vigie agent --dev`: bytes that
// are not UTF-8, values on standard input, bad flag values, interrupts, and the exact `-w json` that etcdctl 3.4
// prints. Every expectation was checked by running etcdctl 3.4 against etcd 3.4 with the same input.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { ApiTarget } from "../helpers/api-suite.js";
import { startDevAgent } from "../helpers/vigie-agent.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

let agent: ApiTarget | undefined;

/** Runs the CLI; `stdin` (when given) is piped in, otherwise stdin is /dev/null. */
async function cli(args: string[], stdin?: Buffer): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args, "--endpoints", agent!.url], {
    stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  child.stdin?.end(stdin);
  const stdout: Buffer[] = [];
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("exit", (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  return { code, signal, stdout: Buffer.concat(stdout), stderr };
}

/** Starts a long-running command, waits for its first output line, interrupts it and returns how it ended. */
async function interruptAfterFirstLine(args: string[], signal: NodeJS.Signals): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args, "--endpoints", agent!.url], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("exit", (c, s) => resolve([c, s])),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no output from ${args.join(" ")}: ${stderr}`)), 10_000);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes("\n")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.kill(signal);
  const [code, ended] = await exited;
  return { code, signal: ended, stdout: Buffer.from(stdout), stderr };
}

test.before(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  agent = await startDevAgent();
});

test.after(async () => {
  await agent?.stop();
});

test("bytes that are not UTF-8 survive put (argument or stdin) and get prints them unchanged", async () => {
  const value = Buffer.from([0x61, 0xff, 0xfe, 0x0a, 0x62]);
  assert.is((await cli(["put", "/edges/stdin"], value)).stdout.toString(), "OK\n");
  const json = JSON.parse((await cli(["get", "/edges/stdin", "-w", "json"])).stdout.toString()) as {
    kvs: Array<{ value: string }>;
  };
  assert.is(json.kvs[0]!.value, value.toString("base64"), "the value read from stdin, byte for byte");
  const simple = await cli(["get", "/edges/stdin"]);
  assert.equal(simple.stdout, Buffer.concat([Buffer.from("/edges/stdin\n"), value, Buffer.from("\n")]));
  // A non-UTF-8 argument: Node decodes argv lossily, so the CLI must read the raw bytes the kernel was given.
  const child = spawn(
    "/bin/sh",
    ["-c", `"$0" "$1" put /edges/arg "$(printf 'x\\377y')" --endpoints "$2"`, process.execPath, CLI, agent!.url],
    { stdio: "ignore" },
  );
  assert.is(await new Promise((resolve) => child.once("exit", resolve)), 0);
  const arg = JSON.parse((await cli(["get", "/edges/arg", "-w", "json"])).stdout.toString()) as {
    kvs: Array<{ value: string }>;
  };
  assert.is(Buffer.from(arg.kvs[0]!.value, "base64").toString("hex"), "78ff79");
});

test("put KEY with nothing on stdin is a usage error naming VALUE (etcdctl: 'needs ... input from stdin')", async () => {
  const run = await cli(["put", "/edges/none"], Buffer.alloc(0));
  assert.is(run.code, 2);
  assert.is(run.stderr, "vigie: put needs VALUE, as an argument or on standard input\n");
});

test("bad flag values exit 2 naming the flag, without a stack trace; etcdctl's accepted forms work", async () => {
  // Independent runs, started together to keep the file fast.
  const [timeout, goForms, consistency, rev, peer, member] = await Promise.all([
    cli(["get", "/edges/x", "--command-timeout", "soon"]),
    cli(["get", "/edges/x", "--command-timeout", "1m", "-w", "simple"]),
    cli(["get", "/edges/x", "--consistency", "x"]),
    cli(["watch", "/edges/x", "--rev", "-5"]),
    cli(["member", "add", "x", "--peer-urls", "notaurl"]),
    cli(["member", "remove", "8000000000000001"]),
  ]);
  assert.is(timeout.code, 2);
  assert.match(timeout.stderr, `--command-timeout expects a duration like 5s, 1m or 500ms, got "soon"`);
  assert.not.match(timeout.stderr, " at ");
  assert.is(goForms.code, 0, goForms.stderr);
  assert.is(consistency.code, 2);
  assert.match(consistency.stderr, "--consistency");
  assert.equal([rev.code, rev.stdout.toString()], [2, ""]);
  assert.match(rev.stderr, `--rev expects a whole number of at least 0, got "-5"`);
  assert.equal(
    [peer.code, peer.stderr],
    [2, `vigie: member add: "notaurl" is not a peer URL like http://127.0.0.1:2380\n`],
  );
  assert.equal([member.code, member.stderr], [1, `vigie: ${agent!.url}: etcdserver: member not found\n`]);
});

test("watch and lease keep-alive die of the signal that stopped them, like etcdctl (the shell sees 130)", async () => {
  const grant = await cli(["lease", "grant", "60"]);
  const id = /^lease ([0-9a-f]{16}) granted/.exec(grant.stdout.toString())?.[1];
  assert.ok(id, grant.stdout.toString());
  const keepAlive = await interruptAfterFirstLine(["lease", "keep-alive", id], "SIGINT");
  assert.equal([keepAlive.code, keepAlive.signal, keepAlive.stderr], [null, "SIGINT", ""]);
  const watch = await interruptAfterFirstLine(["watch", "/edges/stdin", "--rev", "1"], "SIGTERM");
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
    new RegExp(`^[0-9a-f]{16}, started, dev, http://127\\.0\\.0\\.1:\\d+, ${agent!.url}, false\\n$`),
  );
  const watch = await interruptAfterFirstLine(["watch", "/edges/stdin", "--rev", "1", "-w", "json"], "SIGINT");
  const event = JSON.parse(watch.stdout.toString().split("\n")[0]!) as Record<string, unknown>;
  assert.equal(Object.keys(event), ["Header", "Events", "CompactRevision", "Canceled", "Created"]);
});

test("lease timetolive [--keys] and lease list print etcdctl's lines and JSON", async () => {
  const granted = await cli(["lease", "grant", "90"]);
  const id = /^lease ([0-9a-f]{16}) granted/.exec(granted.stdout.toString())?.[1];
  assert.ok(id, granted.stdout.toString());
  await cli(["put", "/edges/leased", "v", "--lease", id]);
  const [plain, keys, json, list, listJson, gone] = await Promise.all([
    cli(["lease", "timetolive", id]),
    cli(["lease", "timetolive", id, "--keys"]),
    cli(["lease", "timetolive", id, "--keys", "-w", "json"]),
    cli(["lease", "list"]),
    cli(["lease", "list", "-w", "json"]),
    cli(["lease", "timetolive", "1234"]),
  ]);
  assert.match(plain.stdout.toString(), new RegExp(`^lease ${id} granted with TTL\\(90s\\), remaining\\(\\d+s\\)\\n$`));
  assert.match(keys.stdout.toString(), /, remaining\(\d+s\), attached keys\(\[\/edges\/leased\]\)\n$/);
  const parsed = JSON.parse(json.stdout.toString()) as Record<string, unknown>;
  assert.equal(
    [parsed.id, parsed["granted-ttl"], parsed.keys],
    [Number.parseInt(id, 16), 90, [Buffer.from("/edges/leased").toString("base64")]],
  );
  assert.match(list.stdout.toString(), /^found \d+ leases\n/);
  assert.ok(list.stdout.toString().split("\n").includes(id), list.stdout.toString());
  const leases = (JSON.parse(listJson.stdout.toString()) as { leases: Array<{ id: number }> }).leases;
  assert.ok(leases.some((lease) => lease.id === Number.parseInt(id, 16)));
  assert.is(gone.stdout.toString(), "lease 0000000000001234 already expired\n");
});

test("a write that timed out is not sent again to the next endpoint (it may have been applied); a read is", async () => {
  // An endpoint that accepts connections and never answers: the request surely left, its fate is unknown.
  const sockets = new Set<import("node:net").Socket>();
  const silent: Server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const address = silent.address();
  assert.ok(address !== null && typeof address === "object");
  const endpoints = `http://127.0.0.1:${address.port},${agent!.url}`;
  try {
    const run = (...args: string[]) => {
      const child = spawn(process.execPath, [CLI, ...args, "--command-timeout", "300ms", "--endpoints", endpoints]);
      let stderr = "";
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      return new Promise<[number | null, string]>((resolve) => child.once("exit", (code) => resolve([code, stderr])));
    };
    const [putCode, putError] = await run("put", "/edges/uncertain", "v");
    assert.is(putCode, 4, putError);
    assert.match(putError, "may or may not have been applied");
    assert.is((await cli(["get", "/edges/uncertain"])).stdout.toString(), "", "not written through the next endpoint");
    assert.equal(await run("get", "/edges/uncertain"), [0, ""], "a read moves on to the next endpoint");
  } finally {
    for (const socket of sockets) socket.destroy();
    silent.close();
  }
});

test("a reader that stops early (| head) ends the command quietly with 141, like etcdctl killed by SIGPIPE", async () => {
  // Larger than a pipe's buffer, so the write is still going on when head has exited.
  await cli(["put", "/edges/big"], Buffer.alloc(300_000, "x"));
  const child = spawn(
    "/bin/bash",
    [
      "-c",
      `"$0" "$1" get /edges/big --endpoints "$2" | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`,
      process.execPath,
      CLI,
      agent!.url,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await new Promise((resolve) => child.once("exit", resolve));
  assert.equal([stdout, stderr], ["141\n", ""]);
});

test("render --once [--dry]: stdout or the file; exit 1 when a template fails, 4 when the store is unreachable", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-cli-render-"));
  try {
    await writeFile(join(dir, "db.hbs"), 'master={{key "/edges/db/master"}}\n');
    const config = join(dir, "vigie.yaml");
    await writeFile(config, `templates:\n  - source: db.hbs\n    destination: ${join(dir, "db.conf")}\n`);
    const missing = await cli(["render", "--once", "--dry", "--config", config]);
    assert.equal([missing.code, missing.stdout.toString()], [1, ""]);
    assert.match(missing.stderr, `key \\"/edges/db/master\\" does not exist`);
    await cli(["put", "/edges/db/master", "10.0.0.7"]);
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
