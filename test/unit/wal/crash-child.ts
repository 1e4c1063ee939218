// Child process for crash.test.ts: appends entries from 16 concurrent appenders to the WAL in argv[2] (syncing
// inline when argv[3] is "inline") and prints each index once its append resolved (= synced), until it is killed. Does nothing when merely imported (the test
// runner imports every file of the directory).
import { pathToFileURL } from "node:url";
import { Wal } from "../../../src/store/wal/wal.js";

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run(process.argv[2], process.argv[3] === "inline");
}

async function run(dir: string | undefined, inlineSync: boolean): Promise<void> {
  if (dir === undefined) throw new Error("usage: crash-child.ts DIR [inline]");
  const { wal, entries } = await Wal.open(dir, { segmentBytes: 16 * 1024, inlineSyncMaxBytes: inlineSync ? 4096 : 0 });
  let next = (entries[entries.length - 1]?.index ?? 0) + 1;
  const appender = async (): Promise<never> => {
    for (;;) {
      const index = next++;
      await wal.append([{ index, term: 1, type: "normal", data: Buffer.from(`entry-${index}`) }], {
        term: 1,
        vote: 1,
        commit: index,
      });
      process.stdout.write(`${index}\n`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, appender));
}
