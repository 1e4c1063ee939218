// Fragments this process's malloc heap the way a write burst does, then trims it: prints one JSON line with the
// anonymous resident memory (kB) before and after the trim, and what trim() returned. Its own process, so that the
// heap it measures holds only this.
import { readFileSync } from "node:fs";
import { loadReleaseMemory } from "../../../src/agent/release-memory.js";
import { fullGc } from "../../../src/v8-settings.js";

function rssAnonKb(): number {
  const match = /RssAnon:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return Number(match?.[1]);
}

const loaded = loadReleaseMemory();
if (loaded.addon === undefined) throw new Error(`addon not loaded: ${loaded.reason}`);
const gc = fullGc();
// 2,000 buffers of 24 KB (below malloc's mmap threshold: they come from its heap), written so their pages are
// resident; every 32nd one is kept, like the Raft entries a burst leaves behind, so free() can give back nothing.
let burst: Buffer[] = [];
const kept: Buffer[] = [];
for (let i = 0; i < 2000; i++) {
  const buffer = Buffer.allocUnsafeSlow(24 * 1024).fill(i & 0xff);
  burst.push(buffer);
  if (i % 32 === 31) kept.push(buffer);
}
burst = [];
gc();
gc();
// No wait: the idle collection trims as soon as gc() returns, which has freed the dead Buffers' memory by then.
const beforeKb = rssAnonKb();
const released = loaded.addon.trimMalloc();
const afterKb = rssAnonKb();
process.stdout.write(`${JSON.stringify({ beforeKb, afterKb, released, kept: kept.length })}\n`);
