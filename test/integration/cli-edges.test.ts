// Edge inputs of the CLI client, run as real processes (dist/cli.js) against a real `vigie agent --dev`: bytes that
// are not UTF-8, values on standard input, bad flag values, a member that never answers, a reader that goes away.
// Every expectation was checked by running etcdctl 3.4 against etcd 3.4 with the same input.
import { spawn } from "node:child_process";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreClient } from "../../src/store/client.js";
import { CuttableProxy } from "../fixtures/sidecar/proxy.js";
import { CLI, runCliAgainst, startCli, startProcess, useDevAgent } from "../helpers/cli-process.js";
import { waitFor } from "../helpers/ports.js";

const agent = useDevAgent(test);
const cli = agent.cli;

test("bytes that are not UTF-8 survive put (argument or stdin) and get prints them unchanged", async () => {
  const value = Buffer.from([0x61, 0xff, 0xfe, 0x0a, 0x62]);
  assert.is((await cli(["put", "/edges/stdin"], value)).stdout.toString(), "OK\n");
  const json = JSON.parse((await cli(["get", "/edges/stdin", "-w", "json"])).stdout.toString()) as {
    kvs: Array<{ value: string }>;
  };
  assert.is(json.kvs[0]!.value, value.toString("base64"), "the value read from stdin, byte for byte");
  const simple = await cli(["get", "/edges/stdin"]);
  assert.equal(simple.stdout, Buffer.concat([Buffer.from("/edges/stdin\n"), value, Buffer.from("\n")]));
  const valueOnly = await cli(["get", "/edges/stdin", "--print-value-only"]);
  assert.equal(valueOnly.stdout, Buffer.concat([value, Buffer.from("\n")]), "etcdctl's --print-value-only");
  // A non-UTF-8 argument: Node decodes argv lossily, so the CLI must read the raw bytes the kernel was given.
  const child = spawn(
    "/bin/sh",
    ["-c", `"$0" "$1" put /edges/arg "$(printf 'x\\377y')" --endpoints "$2"`, process.execPath, CLI, agent.url()],
    { stdio: "ignore" },
  );
  assert.is(await new Promise((resolve) => child.once("exit", resolve)), 0);
  const arg = JSON.parse((await cli(["get", "/edges/arg", "-w", "json"])).stdout.toString()) as {
    kvs: Array<{ value: string }>;
  };
  assert.is(Buffer.from(arg.kvs[0]!.value, "base64").toString("hex"), "78ff79");
});

test("get --prefix prints a prefix larger than the sidecar's 8 MiB answer limit whole, as etcdctl does", async () => {
  const client = new StoreClient({ endpoints: [agent.url()] });
  try {
    // 9 values of 1 MB: ~12 MB once base64-encoded in the answer.
    for (let i = 0; i < 9; i++) await client.put(`/edges/big/${i}`, `${i}`.repeat(1_000_000));
  } finally {
    await client.close();
  }
  const run = await cli(["get", "/edges/big/", "--prefix", "--print-value-only"]);
  assert.is(run.code, 0, run.stderr);
  const lines = run.stdout.toString().split("\n");
  assert.equal(
    lines.map((line) => [line.length, line[0]]),
    [...Array.from({ length: 9 }, (_, i) => [1_000_000, `${i}`]), [0, undefined]],
  );
});

test("put KEY with nothing on stdin is a usage error naming VALUE (etcdctl: 'needs ... input from stdin')", async () => {
  const run = await cli(["put", "/edges/none"], Buffer.alloc(0));
  assert.is(run.code, 2);
  assert.is(run.stderr, "vigie: put needs VALUE, as an argument or on standard input\n");
});

test("bad flag values exit 2 naming the flag, without a stack trace; etcdctl's accepted forms work", async () => {
  // Independent runs, started together to keep the file fast.
  const [timeout, goForms, consistency, rev, peer, member, dead] = await Promise.all([
    cli(["get", "/edges/x", "--command-timeout", "soon"]),
    cli(["get", "/edges/x", "--command-timeout", "1m", "-w", "simple"]),
    cli(["get", "/edges/x", "--consistency", "x"]),
    cli(["watch", "/edges/x", "--rev", "-5"]),
    cli(["member", "add", "x", "--peer-urls", "notaurl"]),
    cli(["member", "remove", "8000000000000001"]),
    runCliAgainst("http://127.0.0.1:1,http://127.0.0.1:2", ["get", "/edges/x"]),
  ]);
  assert.equal(
    [dead.code, dead.stderr],
    [
      4,
      "vigie: no endpoint answered (http://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1; " +
        "http://127.0.0.1:2: connect ECONNREFUSED 127.0.0.1:2)\n",
    ],
    "each endpoint named once, with its cause",
  );
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
  assert.equal([member.code, member.stderr], [1, `vigie: ${agent.url()}: etcdserver: member not found\n`]);
});

test("a write that timed out is not sent again to the next endpoint (it may have been applied); a read is", async () => {
  // An endpoint that accepts connections and never answers: the request surely left, its fate is unknown.
  const sockets = new Set<import("node:net").Socket>();
  const silent: Server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const address = silent.address();
  assert.ok(address !== null && typeof address === "object");
  const endpoints = `http://127.0.0.1:${address.port},${agent.url()}`;
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

test("watch survives any number of interruptions spread over time (a stream that answered resets the budget)", async () => {
  // A member that accepts each watch, answers 'created', and drops it 20 ms later: 12 interruptions in a row.
  let watches = 0;
  const flaky = createHttpServer((request, response) => {
    request.resume();
    watches++;
    response.writeHead(200, { "content-type": "application/json" });
    response.write(`${JSON.stringify({ result: { header: { revision: "1" }, created: true } })}\n`);
    setTimeout(() => response.socket?.destroy(), 20);
  });
  await new Promise<void>((resolve) => flaky.listen(0, "127.0.0.1", resolve));
  const address = flaky.address();
  assert.ok(address !== null && typeof address === "object");
  try {
    const watch = startCli(["watch", "/edges/w", "--endpoints", `http://127.0.0.1:${address.port}`]);
    // Before, the 11th interruption ended the watch with exit 4, and the pauses grew to 2 s: 12 took ~13 s.
    await waitFor("12 reconnects", async () => watches >= 13, 8_000);
    watch.child.kill("SIGINT");
    assert.equal(await watch.exited, [null, "SIGINT"], watch.stderr());
    assert.ok((watch.stderr().match(/reconnecting/g) ?? []).length >= 12, watch.stderr());
  } finally {
    flaky.close();
  }
});

test("watch leaves a member that stopped answering for the next endpoint (etcdctl's keepalive does the same)", async () => {
  // A member that opens the watch ('created') and then says nothing more, and never answers a status request: as a
  // stopped process (SIGSTOP) or a host gone behind an open TCP connection looks. The second endpoint is real.
  const frozen = createHttpServer((request, response) => {
    request.resume();
    if (request.url !== "/v3/watch") return; // never answered
    response.writeHead(200, { "content-type": "application/json" });
    response.write(`${JSON.stringify({ result: { header: { revision: "1" }, created: true } })}\n`);
  });
  await new Promise<void>((resolve) => frozen.listen(0, "127.0.0.1", resolve));
  const address = frozen.address();
  assert.ok(address !== null && typeof address === "object");
  const watch = startCli([
    "watch",
    "/edges/frozen",
    "--command-timeout",
    "1s",
    "--endpoints",
    `http://127.0.0.1:${address.port},${agent.url()}`,
  ]);
  try {
    // Written until the watch shows one: it can only come from the second endpoint, once the first was given up.
    let written = 0;
    await waitFor(
      "an event from the second endpoint",
      async () => {
        await cli(["put", "/edges/frozen", `v${written++}`]);
        return watch.stdout().includes("PUT\n/edges/frozen\n");
      },
      15_000,
    );
    watch.child.kill("SIGINT");
    assert.equal(await watch.exited, [null, "SIGINT"]);
  } finally {
    watch.child.kill("SIGKILL");
    frozen.closeAllConnections();
    frozen.close();
  }
});

test("lease keepalive leaves a member that stopped answering in time to keep a short lease", async () => {
  // The first endpoint is a proxy to the agent that then freezes (connections open, nothing answered), as a member
  // stopped by SIGSTOP; the second is the agent itself. A renewal that waited the whole --command-timeout (5 s) on
  // the frozen one let a 3 s lease expire.
  const client = new StoreClient({ endpoints: [agent.url()] });
  const proxy = new CuttableProxy(new URL(agent.url()));
  await proxy.open();
  const lease = await client.leaseGrant(3);
  const keepalive = startCli([
    "lease",
    "keepalive",
    BigInt(lease.id).toString(16),
    "--endpoints",
    `http://127.0.0.1:${proxy.port},${agent.url()}`,
  ]);
  const renewals = () => (keepalive.stdout().match(/keepalived with TTL\(3\)/g) ?? []).length;
  try {
    await waitFor("the first renewal", async () => renewals() >= 1);
    proxy.freeze();
    const before = renewals();
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    assert.is(keepalive.child.exitCode, null, `keepalive ended: ${keepalive.stderr()}`);
    assert.ok(renewals() >= before + 3, `renewals after the freeze: ${renewals() - before}; ${keepalive.stderr()}`);
    assert.ok((await client.leaseTimeToLive(lease.id)).ttlSeconds > 0, "the lease is alive");
    keepalive.child.kill("SIGINT");
    assert.equal(await keepalive.exited, [null, "SIGINT"]);
  } finally {
    keepalive.child.kill("SIGKILL");
    await proxy.cut();
    await client.close();
  }
});

test("a reader that stops early (| head) ends the command quietly with 141, like etcdctl killed by SIGPIPE", async () => {
  // Larger than a pipe's buffer, so the write is still going on when head has exited.
  await cli(["put", "/edges/big"], Buffer.alloc(300_000, "x"));
  const pipeline = startProcess("/bin/bash", [
    "-c",
    `"$0" "$1" get /edges/big --endpoints "$2" | head -c 1 >/dev/null; echo "\${PIPESTATUS[0]}"`,
    process.execPath,
    CLI,
    agent.url(),
  ]);
  await pipeline.exited;
  assert.equal([pipeline.stdout(), pipeline.stderr()], ["141\n", ""]);
});

test.run();
