// The WAL directory lock under a race: several real processes try to take it at the same moment, on a free
// directory and on one whose lock file names a dead process (left by kill -9). Exactly one may win: two agents
// appending to one log destroy it. A lock naming a live process that started after the owner did (a reused pid) is
// stale too.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { lockDirectory, WalLockedError } from "../../../src/store/wal/dir-lock.js";

const child = join(dirname(fileURLToPath(import.meta.url)), "lock-child.ts");
const RACERS = 6;

interface Racer {
  answer: Promise<string>;
  /** Lets a winner release the lock and exit. */
  finish: () => Promise<void>;
}

function startChild(dir: string, startAtMs: number): Racer {
  const proc = spawn(process.execPath, ["--import", "tsx", child, dir, String(startAtMs)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const exited = new Promise<number | null>((resolve) => proc.on("exit", resolve));
  const answer = new Promise<string>((resolve, reject) => {
    proc.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.endsWith("\n")) resolve(out.trim());
    });
    proc.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    void exited.then((code) => reject(new Error(`child ended (${code}) without answering: ${err}`)));
  });
  const finish = async () => {
    proc.stdin.end();
    const code = await exited;
    if (code !== 0) throw new Error(`child failed (${code}): ${err}`);
  };
  return { answer, finish };
}

/** Starts RACERS children that all try at the same instant; returns their answers once all have answered. */
async function race(dir: string): Promise<string[]> {
  // Late enough for every child to have started (tsx takes a few hundred ms each on two cores). A late child is
  // still checked: the winner holds the lock until every child has answered.
  const startAtMs = Date.now() + 2500;
  const racers = Array.from({ length: RACERS }, () => startChild(dir, startAtMs));
  try {
    return await Promise.all(racers.map((r) => r.answer));
  } finally {
    await Promise.all(racers.map((r) => r.finish()));
  }
}

function deadPid(): number {
  const done = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(done.stdout.toString());
}

for (const stale of [false, true]) {
  test(`${RACERS} processes racing for a ${stale ? "stale (dead owner's)" : "free"} lock: exactly one wins`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "vigie-wal-lock-race-"));
    try {
      if (stale) await writeFile(join(dir, "LOCK"), `${deadPid()}\n`);
      const answers = await race(dir);
      const winners = answers.filter((a) => a === "locked").length;
      assert.is(winners, 1, `answers: ${answers.join(", ")}`);
      for (const a of answers) if (a !== "locked") assert.is(a, "refused VIGIE_ERR_WAL_LOCKED");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test("the lock file is private (0600), names its owner, and is gone once released", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-wal-lock-file-"));
  try {
    const release = await lockDirectory(dir);
    const path = join(dir, "LOCK");
    assert.is((await stat(path)).mode & 0o777, 0o600);
    const [pid, startTicks] = (await readFile(path, "utf8")).trim().split(" ");
    assert.is(Number(pid), process.pid);
    assert.is(startTicks, startTicksOf(process.pid));
    await release();
    await assert.not.ok(await stat(path).catch(() => null));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a lock held by a live process is refused with its pid and the lock file's path; a reused pid is not the owner", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-wal-lock-live-"));
  try {
    const tryLock = () =>
      lockDirectory(dir).then(
        (release) => release,
        (e: unknown) => e,
      );
    // pid 1 always exists: as written by this version (with its start time) and by an older one (pid alone).
    for (const content of [`1 ${startTicksOf(1)}\n`, "1\n"]) {
      await writeFile(join(dir, "LOCK"), content);
      const error = await tryLock();
      assert.instance(error, WalLockedError, content);
      assert.match((error as Error).message, "process 1");
      assert.match((error as Error).message, join(dir, "LOCK"));
    }
    // A process killed -9, its pid now another live process (a restarted container): the lock is stale.
    await writeFile(join(dir, "LOCK"), `1 ${Number(startTicksOf(1)) + 12345}\n`);
    const release = await tryLock();
    assert.type(release, "function");
    assert.match(await readFile(join(dir, "LOCK"), "utf8"), new RegExp(`^${process.pid} `));
    await (release as () => Promise<void>)();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Field 22 of /proc/PID/stat, as the lock records it. */
function startTicksOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
}

test.run();
