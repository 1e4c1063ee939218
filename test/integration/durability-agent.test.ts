// Durability as an operator meets it, with the built `vigie agent --dev --data-dir D` as real processes: every
// acknowledged put survives kill -9 and a restart from D; a second agent on D stops with the lock's message instead
// of sharing the log; a flipped byte in a synced segment stops start-up naming the file and the byte; a disk that
// fills up (a file size limit, EFBIG as ENOSPC) makes the agent exit 1 with the WAL's error, never acknowledging a
// put it could not write, and a restart without the limit serves every acknowledged put; a snapshot that passes its
// checksum but cannot be restored is named too.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, open, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { snapshotFilePath, Wal } from "../../src/store/wal/wal.js";
import { VIGIE_CLI } from "../helpers/cluster.js";
import { freePort, waitFor } from "../helpers/ports.js";

interface Running {
  child: ChildProcess;
  endpoint: string;
  output: () => string;
  exited: Promise<number | null>;
}

const b64 = (text: string) => Buffer.from(text).toString("base64");

/** `vigie agent --dev` on data dir `dataDir`, through `bash -c 'ulimit -f BLOCKS; exec ...'` when limited. */
async function startAgent(dataDir: string, fileLimitBlocks?: number): Promise<Running> {
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const args = [VIGIE_CLI, "agent", "--dev", "--data-dir", dataDir, "--listen-client", endpoint, "--listen-peer", peer];
  const child =
    fileLimitBlocks === undefined
      ? spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] })
      : spawn("bash", ["-c", `ulimit -f ${fileLimitBlocks} && exec "$@"`, "bash", process.execPath, ...args], {
          stdio: ["ignore", "pipe", "pipe"],
        });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, endpoint, output: () => output, exited };
}

async function healthy(agent: Running): Promise<void> {
  await waitFor(
    `health of ${agent.endpoint}`,
    async () => {
      if (agent.child.exitCode !== null) throw new Error(`agent exited: ${agent.output()}`);
      return (await fetch(`${agent.endpoint}/health`)).status === 200;
    },
    15_000,
  );
}

/** A put through the JSON gateway: true when acknowledged (200), false on any other answer or a broken connection. */
async function put(agent: Running, key: string, value: string): Promise<boolean> {
  try {
    const response = await fetch(`${agent.endpoint}/v3/kv/put`, {
      method: "POST",
      body: JSON.stringify({ key: b64(key), value: b64(value) }),
      signal: AbortSignal.timeout(5000),
    });
    await response.text();
    return response.status === 200;
  } catch {
    return false;
  }
}

async function get(agent: Running, key: string): Promise<string | null> {
  const response = await fetch(`${agent.endpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: b64(key) }),
  });
  const body = (await response.json()) as { kvs?: { value: string }[] };
  const value = body.kvs?.[0]?.value;
  return value === undefined ? null : Buffer.from(value, "base64").toString();
}

/** The agent's exit code, once it exits by itself; null when it was still running after `waitMs` (then killed). */
async function exitCode(agent: Running, waitMs = 15_000): Promise<number | null> {
  const timer = setTimeout(() => agent.child.kill("SIGKILL"), waitMs);
  const code = await agent.exited;
  clearTimeout(timer);
  return code;
}

async function killed(agent: Running): Promise<void> {
  agent.child.kill("SIGKILL");
  await agent.exited;
}

async function stopped(agent: Running): Promise<number | null> {
  agent.child.kill("SIGTERM");
  return await agent.exited;
}

const roots: string[] = [];
const agents: Running[] = [];
test.after(async () => {
  for (const agent of agents) if (agent.child.exitCode === null && agent.child.signalCode === null) await killed(agent);
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function dataDir(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "vigie-durability-"));
  roots.push(root);
  return join(root, "data");
}

async function started(dir: string, fileLimitBlocks?: number): Promise<Running> {
  const agent = await startAgent(dir, fileLimitBlocks);
  agents.push(agent);
  return agent;
}

test("acknowledged puts survive kill -9; a second agent on the data dir is refused; a flipped byte is named", async () => {
  const dir = await dataDir();
  const first = await started(dir);
  await healthy(first);
  const acked: number[] = [];
  // Concurrent puts, the agent killed while they are in flight.
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; i < 1000; i++) {
      const n = w * 1000 + i;
      if (!(await put(first, `k${n}`, `v${n}`))) return;
      acked.push(n);
    }
  });
  await waitFor("some acknowledged puts", async () => acked.length >= 200);

  const second = await started(dir);
  assert.is(await exitCode(second), 1, second.output());
  assert.match(second.output(), `data dir in use by process ${first.child.pid}`);

  await killed(first);
  await Promise.all(writers);
  const restarted = await started(dir);
  await healthy(restarted);
  for (const n of acked) assert.is(await get(restarted, `k${n}`), `v${n}`, `acknowledged put k${n}`);
  assert.is(await stopped(restarted), 0);
  // The data dir is private, as etcd's.
  assert.is((await stat(join(dir, "wal"))).mode & 0o777, 0o700);

  const walDir = join(dir, "wal");
  const segment = join(walDir, (await readdir(walDir)).filter((n) => n.endsWith(".wal")).sort()[0]!);
  const handle = await open(segment, "r+");
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, 300);
  byte[0]! ^= 0x04;
  await handle.write(byte, 0, 1, 300);
  await handle.close();
  const broken = await started(dir);
  assert.is(await exitCode(broken), 1, broken.output());
  assert.match(broken.output(), `WAL corrupt: ${segment} at byte`);
});

test("a disk that fills up stops the agent with the WAL's error; every acknowledged put is served after a restart", async () => {
  const dir = await dataDir();
  // The first preallocation step (4 MiB) fits, the next one does not.
  const agent = await started(dir, 6 * 1024);
  await healthy(agent);
  const value = "x".repeat(100 * 1024);
  const acked: number[] = [];
  for (let n = 0; n < 200; n++) {
    if (!(await put(agent, `big${n}`, `${n}:${value}`))) break;
    acked.push(n);
  }
  assert.ok(acked.length > 10 && acked.length < 200, `acknowledged ${acked.length} puts of 100 KiB`);
  assert.is(await exitCode(agent), 1, agent.output().slice(-2000));
  assert.match(agent.output(), "WAL unusable: write or fsync failed: EFBIG");

  const restarted = await started(dir);
  await healthy(restarted);
  for (const n of acked) assert.is(await get(restarted, `big${n}`), `${n}:${value}`, `acknowledged put big${n}`);
  assert.is(await stopped(restarted), 0);
});

test("a snapshot whose checksum is good but whose content cannot be restored stops start-up naming the file", async () => {
  const dir = await dataDir();
  const agent = await started(dir);
  await healthy(agent);
  assert.ok(await put(agent, "k", "v"));
  assert.is(await stopped(agent), 0);
  // What a format change or a bug would leave: a well-formed snapshot file whose data the replica cannot decode.
  const { wal, entries } = await Wal.open(dir);
  const last = entries[entries.length - 1]!;
  const metadata = { index: last.index, term: last.term, confState: { voters: [], learners: [] } };
  await wal.saveSnapshot({ metadata, data: Buffer.from("not a vigie snapshot") });
  await wal.close();
  const broken = await started(dir);
  assert.is(await exitCode(broken), 1, broken.output());
  assert.match(broken.output(), `snapshot corrupt: ${snapshotFilePath(dir, metadata)}: cannot be restored`);
});

test.run();
