// Child process for snapshot-crash.test.ts: appends entries and, every few entries, saves a snapshot of 256 KiB
// (so that a kill often lands inside the temp file write, the rename or the directory sync) and releases the log
// behind it (segments deleted), until it is killed. Prints "ack N" once entry N is durable and "snap N" once the
// snapshot at N is. Does nothing when merely imported (the test runner imports every file of the directory).
import { pathToFileURL } from "node:url";
import { Wal } from "../../../src/store/wal/wal.js";

export const SNAPSHOT_EVERY_ENTRIES = 25;
export const WAL_OPTIONS = { segmentBytes: 2048, keepTailEntries: 5, keepSnapshots: 2 };

/** The snapshot taken at `index`: its bytes tell which index they belong to. */
export function snapshotData(index: number): Buffer {
  const data = Buffer.alloc(256 * 1024, index % 251);
  data.writeUInt32LE(index, 0);
  return data;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run(process.argv[2]);
}

async function run(dir: string | undefined): Promise<void> {
  if (dir === undefined) throw new Error("usage: snapshot-crash-child.ts DIR");
  const { wal, entries, snapshot } = await Wal.open(dir, WAL_OPTIONS);
  let index = entries[entries.length - 1]?.index ?? snapshot?.metadata.index ?? 0;
  for (;;) {
    index++;
    await wal.append([{ index, term: 1, type: "normal", data: Buffer.from(`entry-${index}`) }], {
      term: 1,
      vote: 1,
      commit: index,
    });
    process.stdout.write(`ack ${index}\n`);
    if (index % SNAPSHOT_EVERY_ENTRIES === 0) {
      const metadata = { index, term: 1, confState: { voters: [1], learners: [] } };
      await wal.saveSnapshot({ metadata, data: snapshotData(index) });
      process.stdout.write(`snap ${index}\n`);
      await wal.releaseTo(index);
    }
  }
}
