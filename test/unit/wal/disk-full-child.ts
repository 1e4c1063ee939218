// Child process for disk-full.test.ts, run under a file size limit (ulimit -f) so that a real write or ftruncate
// of the WAL fails (EFBIG, as ENOSPC would on a full disk). Appends one entry at a time and prints "ack N" once an
// append resolved; with preallocation the ftruncate that extends the file fails, without it the write itself (a
// short write, then EFBIG: a torn record at the tail). At the first failure prints "failed CODE MESSAGE", then what a later append and a snapshot get
// ("refused CODE"). Does nothing when merely imported (the test runner imports every file of the directory).
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Wal } from "../../../src/store/wal/wal.js";

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[3] === "snapshot") await runSnapshot(process.argv[2]!);
  else await run(process.argv[2], process.argv[3] === "inline", Number(process.argv[4] ?? "8192"));
}

function codeOf(error: unknown): string {
  return (error as { code?: string }).code ?? "none";
}

async function run(dir: string | undefined, inlineSync: boolean, preallocateBytes: number): Promise<void> {
  if (dir === undefined) throw new Error("usage: disk-full-child.ts DIR inline|thread-pool PREALLOCATE_BYTES");
  // Over the limit the kernel sends SIGXFSZ, which kills by default; caught, the write fails with EFBIG instead.
  process.on("SIGXFSZ", () => {});
  const { wal } = await Wal.open(dir, {
    segmentBytes: 1024 * 1024,
    preallocateBytes,
    inlineSyncMaxBytes: inlineSync ? 4096 : 0,
  });
  const data = Buffer.alloc(300, 0x61);
  for (let index = 1; ; index++) {
    try {
      await wal.append([{ index, term: 1, type: "normal", data }], { term: 1, vote: 1, commit: index });
      process.stdout.write(`ack ${index}\n`);
    } catch (error) {
      process.stdout.write(`failed ${codeOf(error)} ${(error as Error).message}\n`);
      break;
    }
  }
  // Everything after a failure is refused: what reached the disk is unknown.
  const last = wal.lastIndex;
  await wal.append([{ index: last + 1, term: 1, type: "normal", data: Buffer.from("x") }]).then(
    () => process.stdout.write("accepted append\n"),
    (error: unknown) => process.stdout.write(`refused ${codeOf(error)}\n`),
  );
  const metadata = { index: last, term: 1, confState: { voters: [1], learners: [] } };
  await wal.saveSnapshot({ metadata, data: Buffer.from("s") }).then(
    () => process.stdout.write("accepted snapshot\n"),
    (error: unknown) => process.stdout.write(`refused ${codeOf(error)}\n`),
  );
  await wal.close();
  process.stdout.write("closed\n");
}

/** A snapshot larger than the limit: its save fails; prints the error and the snap/ files left, then appends. */
async function runSnapshot(dir: string): Promise<void> {
  process.on("SIGXFSZ", () => {});
  const { wal } = await Wal.open(dir, { preallocateBytes: 0 });
  await wal.append([{ index: 1, term: 1, type: "normal", data: Buffer.from("a") }]);
  const metadata = { index: 1, term: 1, confState: { voters: [1], learners: [] } };
  await wal.saveSnapshot({ metadata, data: Buffer.alloc(200 * 1024, 1) }).then(
    () => process.stdout.write("accepted snapshot\n"),
    (error: unknown) => process.stdout.write(`snapshot failed ${(error as Error).message}\n`),
  );
  process.stdout.write(`snap files: ${(await readdir(join(dir, "snap"))).join(" ")}\n`);
  // The log never named the snapshot: it is intact and goes on.
  await wal.append([{ index: 2, term: 1, type: "normal", data: Buffer.from("b") }]);
  process.stdout.write("ack 2\n");
  await wal.close();
}
