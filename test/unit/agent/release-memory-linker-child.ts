// Drops this process's linker tables, then loads an addon: the dynamic linker reads the tables again to bind the
// addon's Node-API symbols, so this shows a later reader still finds them. Prints one JSON line: the tables'
// resident kB before, after the drop and after the load, what dropLinkerTables() returned, and the loaded addon's
// answer. Its own process, so that nothing else maps or drops its pages meanwhile.
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadReleaseMemory, RELEASE_MEMORY_ADDON } from "../../../src/agent/release-memory.js";
import { linkerTablesMapping } from "../../helpers/linker-tables.js";

const loaded = loadReleaseMemory();
if (loaded.addon === undefined) throw new Error(`addon not loaded: ${loaded.reason}`);
const before = linkerTablesMapping("self");
if (before === undefined) throw new Error("the executable maps no read-only segment at offset 0");
const droppedBytes = loaded.addon.dropLinkerTables();
const afterDrop = linkerTablesMapping("self");
// A copy under another path: node would hand back the addon it already loaded for the same one.
const dir = mkdtempSync(join(tmpdir(), "vigie-release-memory-"));
try {
  const copy = join(dir, "copy.node");
  copyFileSync(
    fileURLToPath(new URL(RELEASE_MEMORY_ADDON, import.meta.resolve("../../../src/agent/release-memory.ts"))),
    copy,
  );
  const second = createRequire(import.meta.url)(copy) as { trimMalloc(): boolean };
  const secondAnswer = typeof second.trimMalloc();
  const afterLoad = linkerTablesMapping("self");
  process.stdout.write(
    `${JSON.stringify({ sizeKb: before.sizeKb, beforeKb: before.rssKb, afterDropKb: afterDrop?.rssKb, afterLoadKb: afterLoad?.rssKb, droppedBytes, secondAnswer })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
