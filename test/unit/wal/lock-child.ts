// Child process for lock.test.ts: waits until the wall-clock time in argv[3] (so that several children race for
// the lock together), tries to take the WAL directory lock of argv[2], prints "locked" or "refused CODE", holds
// a taken lock until its stdin closes (the parent has every answer by then) and exits. Does nothing when merely imported (the test runner imports every file).
import { pathToFileURL } from "node:url";
import { lockDirectory } from "../../../src/store/wal/dir-lock.js";

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run(process.argv[2], Number(process.argv[3]));
}

async function run(dir: string | undefined, startAtMs: number): Promise<void> {
  if (dir === undefined) throw new Error("usage: lock-child.ts DIR START_AT_MS");
  // Spin for the last stretch: a timer alone wakes each child at a slightly different moment.
  while (Date.now() < startAtMs - 5) await new Promise((resolve) => setTimeout(resolve, 1));
  while (Date.now() < startAtMs) {}
  try {
    const release = await lockDirectory(dir);
    process.stdout.write("locked\n");
    process.stdin.resume();
    await new Promise((resolve) => process.stdin.once("end", resolve));
    await release();
  } catch (error) {
    process.stdout.write(`refused ${(error as { code?: string }).code ?? (error as Error).message}\n`);
  }
}
