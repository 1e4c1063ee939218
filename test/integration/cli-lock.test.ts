// `vigie lock`: etcdctl's lock on the same keys. Contenders (vigie and etcdctl 3.4 together on a real etcd, vigie
// alone on a vigie agent) run a critical section that logs its entry and exit around a sleep: the log must never show
// two holders at once, and every contender must get its turn. Then the edges: the held key's shape, the
// command's environment and exit status, SIGINT while waiting, SIGTERM passed on to the command, a holder
// killed -9 whose lock frees itself when its lease expires, and a holder told its lease is gone.
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CuttableProxy } from "../fixtures/sidecar/proxy.js";
import { call } from "../helpers/api-client.js";
import { b64 } from "../helpers/api-expect.js";
import { CLI, type RunningCli, requireBuiltCli, startProcess } from "../helpers/cli-process.js";
import { startEtcd } from "../helpers/etcd.js";
import { waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import { startDevAgent } from "../helpers/vigie-agent.js";

const tools = requireTools("cli-lock", "etcd", "etcdctl");

/** A critical section: logs "enter ID", sleeps, logs "leave ID" (appends: each line is one write). */
async function criticalSection(dir: string): Promise<{ script: string; log: string }> {
  const script = join(dir, "section.sh");
  const log = join(dir, "section.log");
  await writeFile(script, `#!/bin/sh\necho "enter $1" >> "${log}"\nsleep 0.15\necho "leave $1" >> "${log}"\n`);
  await chmod(script, 0o755);
  await writeFile(log, "");
  return { script, log };
}

/** Checks the log: enter and leave alternate, each by the same contender, and every contender ran once. */
function assertExclusive(logText: string, ids: string[]): void {
  const lines = logText.trim().split("\n");
  assert.is(lines.length, ids.length * 2, logText);
  for (let i = 0; i < lines.length; i += 2) {
    const id = lines[i]!.replace(/^enter /, "");
    assert.is(lines[i], `enter ${id}`, `two holders at once:\n${logText}`);
    assert.is(lines[i + 1], `leave ${id}`, `two holders at once:\n${logText}`);
  }
  assert.equal(
    lines
      .filter((line) => line.startsWith("enter "))
      .map((line) => line.slice(6))
      .sort(),
    [...ids].sort(),
  );
}

async function ended(running: RunningCli, what: string): Promise<[number | null, NodeJS.Signals | null]> {
  const timer = setTimeout(() => running.child.kill("SIGKILL"), 30_000);
  const result = await running.exited;
  clearTimeout(timer);
  assert.ok(result[1] !== "SIGKILL", `${what} did not end: ${running.stderr()}`);
  return result;
}

/** The keys under `prefix` on the store at `url`. */
async function keysUnder(url: string, prefix: string): Promise<string[]> {
  const answer = await call(url, "/v3/kv/range", {
    key: b64(prefix),
    range_end: b64(prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)),
  });
  const kvs = (answer.json?.kvs ?? []) as Array<{ key: string }>;
  return kvs.map((kv) => Buffer.from(kv.key, "base64").toString());
}

function vigie(url: string, args: string[]): RunningCli {
  return startProcess(process.execPath, [CLI, "--endpoints", url, ...args]);
}

test("vigie lock and etcdctl lock exclude each other on etcd", async () => {
  requireBuiltCli();
  if (tools === undefined) return;
  const etcd = await startEtcd({ name: "lock" });
  const dir = await mkdtemp(join(tmpdir(), "vigie-lock-"));
  try {
    const { script, log } = await criticalSection(dir);
    const contenders: RunningCli[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(`vigie-${i}`, `etcdctl-${i}`);
      contenders.push(vigie(etcd.clientUrl, ["lock", "deploy", script, `vigie-${i}`]));
      contenders.push(
        startProcess(tools.etcdctl!, [`--endpoints=${etcd.clientUrl}`, "lock", "deploy", script, `etcdctl-${i}`]),
      );
    }
    for (const [i, contender] of contenders.entries()) {
      const [code] = await ended(contender, `contender ${i}`);
      assert.is(code, 0, contender.stderr());
    }
    assertExclusive(await readFile(log, "utf8"), ids);
    assert.equal(await keysUnder(etcd.clientUrl, "deploy/"), [], "every contender released the lock");

    // The held key is etcd's: NAME/<lease ID in hex>, on that lease, printed as etcdctl prints it.
    const holder = vigie(etcd.clientUrl, ["lock", "deploy"]);
    await waitFor("the lock held", async () => holder.stdout().includes("\n"));
    const [key] = await keysUnder(etcd.clientUrl, "deploy/");
    assert.is(holder.stdout(), `${key}\n\n`);
    const onEtcd = await call(etcd.clientUrl, "/v3/kv/range", { key: b64(key!) });
    const lease = ((onEtcd.json?.kvs ?? []) as Array<{ lease: string }>)[0]?.lease ?? "0";
    assert.is(key, `deploy/${BigInt(lease).toString(16)}`);
    holder.child.kill("SIGINT");
    assert.equal(await ended(holder, "the holder"), [0, null]);
    assert.equal(await keysUnder(etcd.clientUrl, "deploy/"), []);
  } finally {
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test("on a vigie agent: exclusion, the command's environment and status, signals, a holder killed -9", async () => {
  requireBuiltCli();
  const agent = await startDevAgent();
  const dir = await mkdtemp(join(tmpdir(), "vigie-lock-"));
  const proxies: CuttableProxy[] = [];
  try {
    const { script, log } = await criticalSection(dir);
    const ids = ["a", "b", "c", "d"];
    const contenders = ids.map((id) => vigie(agent.url, ["lock", "jobs", script, id]));
    for (const contender of contenders) assert.equal(await ended(contender, "a contender"), [0, null]);
    assertExclusive(await readFile(log, "utf8"), ids);

    // The command gets etcdctl's ETCD_LOCK_KEY and ETCD_LOCK_REV, and vigie exits with its status.
    const env = vigie(agent.url, ["lock", "jobs", "--", "sh", "-c", 'echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"; exit 7']);
    assert.equal(await ended(env, "the command"), [7, null]);
    const [envKey, envRev] = env.stdout().trim().split(" ");
    assert.match(envKey!, /^jobs\/[0-9a-f]+$/);
    assert.ok(Number(envRev) > 0, env.stdout());

    // SIGINT while waiting: exit 1, named, and its key withdrawn; the holder is unaffected.
    const holder = vigie(agent.url, ["lock", "jobs", "--ttl", "2"]);
    await waitFor("the lock held", async () => holder.stdout().includes("\n"));
    const waiter = vigie(agent.url, ["lock", "jobs"]);
    await waitFor("the waiter queued", async () => (await keysUnder(agent.url, "jobs/")).length === 2);
    waiter.child.kill("SIGINT");
    assert.equal(await ended(waiter, "the interrupted waiter"), [1, null]);
    assert.match(waiter.stderr(), /lock jobs: interrupted by SIGINT before it was held/);
    assert.equal(await keysUnder(agent.url, "jobs/"), [holder.stdout().split("\n")[0]]);

    // The holder killed -9 renews no more: its lease (TTL 2 s) expires and the next contender gets the lock.
    const next = vigie(agent.url, ["lock", "jobs", "--", "sh", "-c", "echo got it"]);
    await waitFor("the next contender queued", async () => (await keysUnder(agent.url, "jobs/")).length === 2);
    holder.child.kill("SIGKILL");
    assert.equal(await ended(next, "the next contender"), [0, null]);
    assert.is(next.stdout(), "got it\n");

    // SIGTERM is passed on to the command, which dies of it; the lock is released.
    // The command says it started (the lock is held by then), then becomes the sleep the signal reaches.
    const sleeper = vigie(agent.url, ["lock", "jobs", "--", "sh", "-c", "echo started; exec sleep 30"]);
    await waitFor("the sleeper holds the lock", async () => sleeper.stdout() === "started\n");
    sleeper.child.kill("SIGTERM");
    assert.equal(await ended(sleeper, "the sleeper"), [143, null]);
    assert.equal(await keysUnder(agent.url, "jobs/"), []);

    // A holder whose lease is gone (revoked here; expired when no member renews it) says the lock is lost, exit 1.
    const doomed = vigie(agent.url, ["lock", "jobs", "--ttl", "3"]);
    await waitFor("the doomed holder holds the lock", async () => doomed.stdout().includes("\n"));
    const doomedKey = doomed.stdout().split("\n")[0]!;
    const revoked = await call(agent.url, "/v3/lease/revoke", {
      ID: BigInt(`0x${doomedKey.split("/")[1]}`).toString(),
    });
    assert.is(revoked.status, 200, revoked.text);
    assert.equal(await ended(doomed, "the holder of a revoked lease"), [1, null]);
    assert.match(doomed.stderr(), /lock jobs lost: lease [0-9a-f]+ expired or was revoked/);

    // A frozen member (as with SIGSTOP) first in --endpoints: the renewals move on to the next member in time, and
    // a 3 s lease outlives the 5 s request timeout that one renewal waited before.
    const proxy = new CuttableProxy(new URL(agent.url));
    proxies.push(proxy);
    await proxy.open();
    const through = vigie(`http://127.0.0.1:${proxy.port},${agent.url}`, ["lock", "frozen", "--ttl", "3"]);
    await waitFor("the lock held through the proxy", async () => through.stdout().includes("\n"));
    proxy.freeze();
    await new Promise((r) => setTimeout(r, 5_000));
    assert.equal(await keysUnder(agent.url, "frozen/"), [through.stdout().split("\n")[0]], through.stderr());
    through.child.kill("SIGINT");
    assert.equal(await ended(through, "the holder behind a frozen member"), [0, null]);

    // A signal while the store has not answered yet (its lease not even granted): interrupted, the command never
    // runs, exit 1.
    const silent = new CuttableProxy(new URL(agent.url));
    proxies.push(silent);
    silent.freeze();
    await silent.open();
    const early = vigie(`http://127.0.0.1:${silent.port}`, ["lock", "jobs", "--", "sh", "-c", "echo ran"]);
    // Its signal handlers are in place before it first connects (a signal before that would just kill node).
    await waitFor("the lock asked the frozen store for its lease", async () => silent.accepted > 0);
    early.child.kill("SIGTERM");
    assert.equal(await ended(early, "the lock interrupted before its lease"), [1, null]);
    assert.is(early.stdout(), "");
    assert.match(early.stderr(), /lock jobs: interrupted by SIGTERM before it was held/);

    // NAME that is not UTF-8 cannot reach a command's environment intact: refused, naming it. --ttl is bounded.
    const raw = startProcess("bash", [
      "-c",
      `exec "$0" "$1" --endpoints "$2" lock $'N\\xff' true`,
      process.execPath,
      CLI,
      agent.url,
    ]);
    assert.equal(await ended(raw, "a NAME that is not UTF-8"), [2, null]);
    assert.match(raw.stderr(), /NAME is not UTF-8, and a COMMAND gets the held key as text in ETCD_LOCK_KEY/);
    const huge = vigie(agent.url, ["lock", "jobs", "--ttl", "9000000001", "true"]);
    assert.equal(await ended(huge, "a huge --ttl"), [2, null]);
    assert.match(huge.stderr(), /--ttl expects at most 9000000000 seconds/);

    // A command that cannot start is named.
    const missing = vigie(agent.url, ["lock", "jobs", join(dir, "no-such-command")]);
    assert.equal(await ended(missing, "the missing command"), [1, null]);
    assert.match(missing.stderr(), /lock jobs: cannot run .*no-such-command: spawn .* ENOENT/);
  } finally {
    // Cut even when a check failed: an open proxy keeps the test process alive.
    for (const proxy of proxies) await proxy.cut();
    await agent.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
