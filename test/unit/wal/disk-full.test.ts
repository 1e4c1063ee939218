// A write that fails for real (a file size limit on the child process: EFBIG, the way a full disk gives ENOSPC):
// the append is rejected, never acknowledged; the WAL then refuses every append and snapshot; and the next start
// replays every acknowledged entry, drops the partial record, and appends again.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Wal } from "../../../src/store/wal/wal.js";

const child = join(dirname(fileURLToPath(import.meta.url)), "disk-full-child.ts");
/** bash's ulimit -f counts 1024-byte blocks: 40 KiB holds ~120 entries of 300 bytes. */
const FILE_LIMIT_BLOCKS = 40;

function runLimited(dir: string, mode: string, preallocateBytes: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const command = `ulimit -f ${FILE_LIMIT_BLOCKS} && exec "$0" --import tsx "$1" "$2" "$3" "$4"`;
    const proc = spawn("bash", ["-c", command, process.execPath, child, dir, mode, String(preallocateBytes)], {
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
    proc.on("exit", (code, signal) =>
      code === 0 ? resolve(out.trim().split("\n")) : reject(new Error(`child ended ${code ?? signal}: ${err}`)),
    );
  });
}

const cases = [
  { mode: "thread-pool", preallocateBytes: 8192, fails: "ftruncate" },
  { mode: "inline", preallocateBytes: 8192, fails: "ftruncate" },
  { mode: "thread-pool", preallocateBytes: 0, fails: "write" },
  { mode: "inline", preallocateBytes: 0, fails: "write" },
];
for (const { mode, preallocateBytes, fails } of cases) {
  test(`a failed ${fails} is never acknowledged and fails the WAL; a restart keeps every ack (${mode} sync)`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "vigie-wal-full-"));
    try {
      const lines = await runLimited(dir, mode, preallocateBytes);
      const acks = lines.filter((l) => l.startsWith("ack ")).map((l) => Number(l.slice(4)));
      assert.ok(acks.length > 20, `acknowledged ${acks.length} before the limit`);
      const failure = lines.find((l) => l.startsWith("failed "));
      assert.ok(failure, lines.slice(-5).join("\n"));
      assert.match(failure, /^failed VIGIE_ERR_WAL_FAILED WAL unusable: write or fsync failed: EFBIG/);
      assert.match(failure, fails === "write" ? /write/ : /ftruncate/);
      assert.equal(lines.slice(-3), ["refused VIGIE_ERR_WAL_FAILED", "refused VIGIE_ERR_WAL_FAILED", "closed"]);
      const lastAck = acks[acks.length - 1]!;

      const replay = await Wal.open(dir, { segmentBytes: 1024 * 1024, preallocateBytes: 8192 });
      // The failed append may or may not have reached the disk whole (it was never acknowledged); nothing else.
      const last = replay.entries[replay.entries.length - 1]!.index;
      assert.ok(last === lastAck || last === lastAck + 1, `acknowledged ${lastAck}, replayed ${last}`);
      for (const [i, e] of replay.entries.entries()) assert.is(e.index, i + 1);
      assert.ok(replay.hardState.commit >= lastAck);
      await replay.wal.append([{ index: last + 1, term: 1, type: "normal", data: Buffer.from("after") }]);
      await replay.wal.close();
      const again = await Wal.open(dir);
      assert.is(again.entries[again.entries.length - 1]!.index, last + 1);
      await again.wal.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test("a snapshot save that fails leaves no temp file, and the log goes on without it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-wal-full-snap-"));
  try {
    const lines = await runLimited(dir, "snapshot", 0);
    assert.match(lines[0]!, /^snapshot failed EFBIG/);
    assert.is(lines[1], "snap files: ");
    assert.is(lines[2], "ack 2");
    const replay = await Wal.open(dir);
    assert.is(replay.snapshot, null);
    assert.is(replay.entries.length, 2);
    await replay.wal.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
