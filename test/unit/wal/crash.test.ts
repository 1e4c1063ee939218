// A real process appending with 16 concurrent appenders is killed with SIGKILL at a random moment (three times
// in a row, each run continuing the same log): every append it saw resolve is in the replayed log, in order.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { WalLockedError } from "../../../src/store/wal/dir-lock.js";
import { Wal } from "../../../src/store/wal/wal.js";

const child = join(dirname(fileURLToPath(import.meta.url)), "crash-child.ts");

/** Runs the child until it acknowledged `acks` appends (plus a random few), kills it; returns the highest ack. */
function runAndKill(dir: string, acks: number, mode: "thread-pool" | "inline"): Promise<number> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--import", "tsx", child, dir, mode], { stdio: ["ignore", "pipe", "pipe"] });
    let highest = 0;
    let seen = 0;
    let buffered = "";
    let stderr = "";
    const killAt = acks + Math.floor(Math.random() * 50);
    proc.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        highest = Math.max(highest, Number(line));
        if (++seen === killAt) proc.kill("SIGKILL");
      }
    });
    proc.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    proc.on("exit", (_code, signal) => {
      if (signal === "SIGKILL") resolve(highest);
      else reject(new Error(`child exited without being killed: ${stderr}`));
    });
  });
}

for (const mode of ["thread-pool", "inline"] as const) {
  test(`SIGKILL during concurrent appends loses no acknowledged entry (${mode} sync)`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "vigie-wal-crash-"));
    try {
      for (let run = 0; run < 3; run++) {
        const acknowledged = await runAndKill(dir, 300, mode);
        const { wal, entries, hardState } = await Wal.open(dir, { segmentBytes: 16 * 1024 });
        await wal.close();
        const last = entries[entries.length - 1]?.index ?? 0;
        assert.ok(last >= acknowledged, `run ${run}: acknowledged ${acknowledged}, replayed up to ${last}`);
        entries.forEach((e, i) => {
          assert.is(e.index, i + 1);
          assert.is(Buffer.from(e.data).toString(), `entry-${e.index}`);
        });
        assert.ok(hardState.commit >= acknowledged, "the hard state is as durable as the entries");
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test("a second process cannot open a WAL in use; a killed owner's lock is taken over", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-wal-lock-"));
  try {
    const proc = spawn(process.execPath, ["--import", "tsx", child, dir], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => proc.stdout.once("data", () => resolve()));
    let refused: unknown;
    try {
      const replay = await Wal.open(dir);
      await replay.wal.close();
    } catch (error) {
      refused = error;
    }
    assert.instance(refused, WalLockedError);
    assert.match((refused as Error).message, `process ${proc.pid}`);
    const exited = new Promise((resolve) => proc.on("exit", resolve));
    proc.kill("SIGKILL");
    await exited;
    const replay = await Wal.open(dir);
    assert.ok(replay.entries.length > 0);
    await replay.wal.close();
    const again = await Wal.open(dir);
    await again.wal.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
