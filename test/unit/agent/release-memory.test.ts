// The release-memory addon (native/release-memory.c, built by `npm ci`): it loads; trimMalloc() gives back to the
// system the free pages a burst leaves in the middle of malloc's heap, which free() alone keeps resident;
// dropLinkerTables() unmaps the executable's dynamic-linking tables, and the dynamic linker still finds them when
// it next reads them. The addon is optional for a newcomer without a C compiler (skipped, saying why); CI requires
// it.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadReleaseMemory } from "../../../src/agent/release-memory.js";
import { spawnAgent } from "../../helpers/agent-process.js";
import { linkerTablesMapping } from "../../helpers/linker-tables.js";
import { freePort, waitFor } from "../../helpers/ports.js";
import { INTEGRATION_REQUIRED } from "../../helpers/require-tool.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const MALLOC_CHILD = join(HERE, "release-memory-malloc-child.ts");
const LINKER_CHILD = join(HERE, "release-memory-linker-child.ts");
const execFileAsync = promisify(execFile);

const loaded = loadReleaseMemory();
function skipReason(): string | undefined {
  if (loaded.addon === undefined)
    return `release-memory: build/release-memory.node not loaded (${loaded.reason}); build it with npm ci or node scripts/build-native.mjs (needs a C compiler)`;
  if (linkerTablesMapping("self") === undefined)
    return `release-memory: ${process.execPath} maps no read-only segment at offset 0 (linked without -z separate-code): it has no linker tables to drop`;
  return undefined;
}
const reason = skipReason();
if (reason !== undefined && INTEGRATION_REQUIRED) throw new Error(`${reason}; VIGIE_REQUIRE_INTEGRATION=1`);
if (reason !== undefined) console.log(`SKIP ${reason}`);
const addonTest = reason === undefined ? test : test.skip;

addonTest("the addon loads; trimMalloc() answers whether memory was given back", () => {
  assert.type(loaded.addon?.trimMalloc(), "boolean");
});

addonTest("after a burst that left every 32nd buffer alive, trimMalloc() gives the freed pages back", async () => {
  const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", MALLOC_CHILD]);
  const result = JSON.parse(stdout) as { beforeKb: number; afterKb: number; released: boolean; kept: number };
  // ~47 MB were written and ~1.5 MB are kept: free() left nearly all of it resident, the trim returns most of it.
  assert.ok(result.released, JSON.stringify(result));
  assert.ok(result.beforeKb - result.afterKb > 30 * 1024, `RssAnon ${result.beforeKb} -> ${result.afterKb} kB`);
  assert.is(result.kept, 62);
});

addonTest("dropLinkerTables() unmaps the linker tables, and an addon loaded afterwards still binds", async () => {
  const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", LINKER_CHILD]);
  const result = JSON.parse(stdout) as {
    sizeKb: number;
    beforeKb: number;
    afterDropKb: number;
    afterLoadKb: number;
    droppedBytes: number;
    secondAnswer: string;
  };
  const summary = JSON.stringify(result);
  // Start-up read most of the tables (node exports every symbol: ~6 MB of them on node 20).
  assert.ok(result.beforeKb > result.sizeKb / 2, summary);
  assert.ok(result.droppedBytes / 1024 > result.beforeKb / 2, `most of what was resident was dropped: ${summary}`);
  assert.ok(result.afterDropKb < result.beforeKb / 4, summary);
  // dlopen looked the addon's Node-API symbols up in the tables: the pages it read came back, and it worked.
  assert.ok(result.afterLoadKb > result.afterDropKb, summary);
  assert.is(result.secondAnswer, "boolean");
});

addonTest(
  "the agent (the built bin) trims malloc and drops its linker tables after its start-up collection",
  async () => {
    const clientUrl = `http://127.0.0.1:${await freePort()}`;
    const peerUrl = `http://127.0.0.1:${await freePort()}`;
    const agent = spawnAgent(["--dev", "--listen-client", clientUrl, "--listen-peer", peerUrl, "--log-level", "debug"]);
    try {
      // The start-up counts as a burst: its collection comes at the first quiet moment, with no load at all.
      const line = await waitFor(
        "the agent's idle collection",
        async () => {
          if (agent.child.exitCode !== null)
            throw new Error(`agent exited with ${agent.child.exitCode}: ${agent.output()}`);
          return agent
            .output()
            .split("\n")
            .find((l) => l.includes('"msg":"idle: collected"'));
        },
        15_000,
      );
      const entry = JSON.parse(line) as { released?: unknown; trimMs?: unknown; droppedBytes?: unknown };
      assert.type(entry.released, "boolean", `the trim ran (a missing addon logs no "released"): ${line}`);
      assert.type(entry.trimMs, "number");
      assert.ok(typeof entry.droppedBytes === "number" && entry.droppedBytes > 1024 * 1024, line);
      const tables = linkerTablesMapping(agent.child.pid!);
      assert.ok(tables !== undefined && tables.rssKb < tables.sizeKb / 4, JSON.stringify(tables));
      assert.not.match(agent.output(), /addon not loaded/);
    } finally {
      await agent.stop();
    }
  },
);

test("a missing addon is reported with the loader's reason, not thrown", () => {
  const missing = loadReleaseMemory("../../build/no-such-addon.node");
  assert.is(missing.addon, undefined);
  assert.match("reason" in missing ? missing.reason : "", /no-such-addon\.node/);
});

test.run();
