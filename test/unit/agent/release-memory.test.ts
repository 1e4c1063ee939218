// The release-memory addon (native/release-memory.c, built by `npm ci`): it loads; trimMalloc() gives back to the
// system the free pages a burst leaves in the middle of malloc's heap, which free() alone keeps resident;
// dropLinkerTables() takes node's dynamic-linking tables out of the resident set, an addon loaded afterwards still
// binds, and a page the process wrote to is never dropped. The addon is optional for a newcomer without a C
// compiler (skipped, saying why); CI requires it. Where node's tables are not in a read-only segment of their own
// (an arm64 build, a node linked without -z separate-code), dropLinkerTables() drops nothing and its tests skip.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadReleaseMemory } from "../../../src/agent/release-memory.js";
import { spawnAgent } from "../../helpers/agent-process.js";
import { linkerTablesMapping } from "../../helpers/linker-tables.js";
import { freePort, waitFor } from "../../helpers/ports.js";
import { findExecutable, INTEGRATION_REQUIRED } from "../../helpers/require-tool.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const MALLOC_CHILD = join(HERE, "release-memory-malloc-child.ts");
const LINKER_CHILD = join(HERE, "release-memory-linker-child.ts");
const HARNESS = join(HERE, "release-memory-harness.c");
const execFileAsync = promisify(execFile);

const loaded = loadReleaseMemory();
const addonMissing =
  loaded.addon === undefined
    ? `release-memory: build/release-memory.node not loaded (${loaded.reason}); build it with npm ci or node scripts/build-native.mjs (needs a C compiler)`
    : undefined;
if (addonMissing !== undefined && INTEGRATION_REQUIRED) throw new Error(`${addonMissing}; VIGIE_REQUIRE_INTEGRATION=1`);
if (addonMissing !== undefined) console.log(`SKIP ${addonMissing}`);
const addonTest = addonMissing === undefined ? test : test.skip;
// A layout the addon refuses is not a missing tool: it is skipped, saying why, even where integration is required.
const layoutRefused =
  loaded.addon !== undefined && loaded.addon.dropLinkerTables() < 0
    ? `release-memory: node's linker tables are not in a read-only segment of their own here (${process.arch}); nothing is dropped`
    : undefined;
if (layoutRefused !== undefined) console.log(`SKIP ${layoutRefused}`);
const tablesTest = addonMissing === undefined && layoutRefused === undefined ? test : test.skip;
const compiler = findExecutable("cc");
const noCompiler = compiler === undefined ? "release-memory: no cc to build the page-dropping harness" : undefined;
if (noCompiler !== undefined && INTEGRATION_REQUIRED) throw new Error(`${noCompiler}; VIGIE_REQUIRE_INTEGRATION=1`);
if (noCompiler !== undefined) console.log(`SKIP ${noCompiler}`);
const harnessTest = noCompiler === undefined ? test : test.skip;

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

tablesTest(
  "dropLinkerTables() takes the linker tables out of the resident set; an addon loaded later binds",
  async () => {
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
    // dlopen looked the addon's Node-API symbols up in the tables, which it found intact: the addon works.
    assert.is(result.secondAnswer, "boolean");
  },
);

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
      const entry = JSON.parse(line) as { released?: unknown; releaseMs?: unknown; droppedBytes?: unknown };
      assert.type(entry.released, "boolean", `the trim ran (a missing addon logs no "released"): ${line}`);
      assert.type(entry.releaseMs, "number");
      if (layoutRefused === undefined) {
        assert.ok(typeof entry.droppedBytes === "number" && entry.droppedBytes > 1024 * 1024, line);
        const tables = linkerTablesMapping(agent.child.pid!);
        assert.ok(tables !== undefined && tables.rssKb < tables.sizeKb / 4, JSON.stringify(tables));
      } else {
        assert.is(entry.droppedBytes, -1, line);
        assert.match(agent.output(), /linker tables not dropped/);
      }
      assert.not.match(agent.output(), /addon not loaded/);
    } finally {
      await agent.stop();
    }
  },
);

harnessTest(
  "a page the process wrote to is kept; the file's clean pages are dropped and read back the same",
  async () => {
    const dir = await mkdtemp(join(tmpdir(), "vigie-release-memory-harness-"));
    try {
      const binary = join(dir, "harness");
      await execFileAsync(compiler!, ["-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, HARNESS]);
      const { stdout } = await execFileAsync(binary, [join(dir, "scratch")]);
      const result = JSON.parse(stdout) as Record<string, number | string>;
      const summary = JSON.stringify(result);
      assert.is(result.residentBefore, result.pages, summary);
      assert.is(result.written, "P", `the written page kept its write: ${summary}`);
      assert.is(result.residentAfter, 1, `only the written page stayed resident: ${summary}`);
      assert.is(result.dropped, (Number(result.pages) - 1) * Number(result.pageBytes), summary);
      assert.is(result.dropped0, "f", `a dropped page reads the file again: ${summary}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test("a missing addon is reported with the loader's reason, not thrown", () => {
  const missing = loadReleaseMemory("../../build/no-such-addon.node");
  assert.is(missing.addon, undefined);
  assert.match("reason" in missing ? missing.reason : "", /no-such-addon\.node/);
});

test.run();
