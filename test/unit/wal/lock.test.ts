// The WAL directory lock under a race: several real processes try to take it at the same moment, on a free
// directory and on one whose lock file names a dead process (left by kill -9). Exactly one may win: two agents
// appending to one log destroy it.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { lockDirectory, WalLockedError } from "../../../src/store/wal/dir-lock.js";

const child = join(dirname(fileURLToPath(import.meta.url)), "lock-child.ts");
const RACERS = 6;

function runChild(dir: string, startAtMs: number, holdMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", child, dir, String(startAtMs), String(holdMs)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    proc.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    proc.on("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`child failed: ${err}`))));
  });
}

/** Starts RACERS children that all try at the same instant; returns their answers. */
async function race(dir: string): Promise<string[]> {
  // Late enough for every child to have started (tsx takes a few hundred ms each on two cores).
  const startAtMs = Date.now() + 2500;
  return Promise.all(Array.from({ length: RACERS }, () => runChild(dir, startAtMs, 1500)));
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
    assert.is(await readFile(path, "utf8"), `${process.pid}\n`);
    await release();
    await assert.not.ok(await stat(path).catch(() => null));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a lock held by a live process is refused with its pid and the lock file's path", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-wal-lock-live-"));
  try {
    // pid 1 always exists.
    await writeFile(join(dir, "LOCK"), "1\n");
    const error = await lockDirectory(dir).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(error, WalLockedError);
    assert.match((error as Error).message, "process 1");
    assert.match((error as Error).message, join(dir, "LOCK"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
