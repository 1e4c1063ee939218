// A data dir copied (cp -r, as a careless backup) while a real process appends, snapshots and releases its log:
// the copy keeps the running owner's lock, so opening it next to the original is refused; with the lock file gone,
// each copy either opens with a gapless log after a verified snapshot, or stops with a corruption error naming a
// file. Never another error, never a log with a hole.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { WalLockedError } from "../../../src/store/wal/dir-lock.js";
import { SnapshotCorruptError, WalCorruptError } from "../../../src/store/wal/errors.js";
import { Wal } from "../../../src/store/wal/wal.js";
import { snapshotData, WAL_OPTIONS } from "./snapshot-crash-child.js";

const child = join(dirname(fileURLToPath(import.meta.url)), "snapshot-crash-child.ts");
const COPIES = 12;

test(`${COPIES} copies of a live data dir: refused while locked, then a clean replay or a named corruption`, async () => {
  const root = await mkdtemp(join(tmpdir(), "vigie-copy-live-"));
  const live = join(root, "live");
  const proc = spawn(process.execPath, ["--import", "tsx", child, live], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise((resolve) => proc.on("exit", resolve));
  try {
    let acked = 0;
    proc.stdout.on("data", (chunk: Buffer) => {
      acked += chunk.toString().split("\n").length - 1;
    });
    await new Promise<void>((resolve) => proc.stdout.once("data", () => resolve()));
    const outcomes: string[] = [];
    for (let i = 0; i < COPIES; i++) {
      const copy = join(root, `copy-${i}`);
      // GNU cp, as an operator would: a file deleted under it (a released segment) is reported and skipped.
      spawnSync("cp", ["-r", live, copy]);
      const locked = await Wal.open(copy, WAL_OPTIONS).then(
        async (r) => {
          await r.wal.close();
          return null;
        },
        (error: unknown) => error,
      );
      assert.instance(locked, WalLockedError, `copy ${i}: ${String(locked)}`);
      await rm(join(copy, "wal", "LOCK"));
      try {
        const { wal, entries, snapshot } = await Wal.open(copy, WAL_OPTIONS);
        await wal.close();
        const snapshotIndex = snapshot?.metadata.index ?? 0;
        if (snapshot !== null) assert.equal(Buffer.from(snapshot.data), snapshotData(snapshotIndex), `copy ${i}`);
        for (const [k, e] of entries.entries()) assert.is(e.index, snapshotIndex + 1 + k, `copy ${i}`);
        outcomes.push("clean");
      } catch (error) {
        assert.ok(
          error instanceof WalCorruptError || error instanceof SnapshotCorruptError,
          `copy ${i}: ${String(error)}`,
        );
        assert.match((error as Error).message, copy);
        outcomes.push((error as Error).message.replace(copy, "COPY"));
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
    }
    assert.ok(acked > 0);
    if (process.env.VIGIE_TEST_VERBOSE) console.log(outcomes.join("\n"));
  } finally {
    proc.kill("SIGKILL");
    await exited;
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
