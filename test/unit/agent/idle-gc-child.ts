// The running idle collector in a process of its own, so that the heap it watches holds only this burst: in the
// test runner's process, garbage left by earlier test files can be collected by V8 during the quiet period and
// shrink the heap by more than the burst grew it. Prints one JSON line: the collections counted at each checkpoint,
// and at each release of memory (malloc trim, then linker tables).
import { startIdleGc } from "../../../src/agent/idle-gc.js";
import { silentLogger } from "../../../src/log.js";

const MB = 1024 * 1024;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

let collections = 0;
let activity = 0;
/** The collections counted when each release of memory ran: "trim:N", then "drop:N". */
const releases: string[] = [];
const idle = startIdleGc({
  logger: silentLogger(),
  activity: () => activity,
  // quietMs far above a work step (10 ms), so a loaded machine's late timers do not look like quiet.
  policy: { burstBytes: 4 * MB, quietMs: 300, busyUtilization: 0.9, minIntervalMs: 60_000, maxPauseShare: 0.05 },
  pollMs: 10,
  // Only the burst below may make the heap grow enough: this checks the growth test in the running collector.
  startupIsBurst: false,
  collect: () => {
    collections++;
  },
  release: {
    trimMalloc: () => {
      releases.push(`trim:${collections}`);
      return true;
    },
    dropLinkerTables: () => {
      releases.push(`drop:${collections}`);
      return 0;
    },
  },
});
const retained: Buffer[] = [];
await sleep(50);
// Work: entries applied on every poll while external memory grows by 12 MB.
for (let i = 0; i < 12; i++) {
  retained.push(Buffer.alloc(MB, i));
  activity++;
  await sleep(10);
}
const whileBusy = collections;
await sleep(1000);
const onceQuiet = collections;
await sleep(400);
const later = collections;
idle.stop();
process.stdout.write(`${JSON.stringify({ whileBusy, onceQuiet, later, releases, retained: retained.length })}\n`);
