// The malloc_trim addon (native/malloc-trim.c, built by `npm ci`): it loads, and it gives back to the system the
// free pages a burst leaves in the middle of malloc's heap, which free() alone keeps resident. The addon is
// optional for a newcomer without a C compiler (skipped, saying why); CI requires it.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadMallocTrim } from "../../../src/agent/malloc-trim.js";
import { spawnAgent } from "../../helpers/agent-process.js";
import { freePort, waitFor } from "../../helpers/ports.js";
import { INTEGRATION_REQUIRED } from "../../helpers/require-tool.js";

const CHILD = join(dirname(fileURLToPath(import.meta.url)), "malloc-trim-child.ts");
const execFileAsync = promisify(execFile);

const loaded = loadMallocTrim();
const skipReason =
  loaded.trim !== undefined
    ? undefined
    : `malloc-trim: build/malloc-trim.node not loaded (${loaded.reason}); build it with npm ci or node scripts/build-native.mjs (needs a C compiler)`;
if (skipReason !== undefined && INTEGRATION_REQUIRED) throw new Error(`${skipReason}; VIGIE_REQUIRE_INTEGRATION=1`);
if (skipReason !== undefined) console.log(`SKIP ${skipReason}`);
const addonTest = skipReason === undefined ? test : test.skip;

addonTest("the addon loads and trim() answers whether memory was given back", () => {
  const result = loaded.trim?.();
  assert.type(result, "boolean");
});

addonTest("after a burst that left every 32nd buffer alive, trim() gives the freed pages back", async () => {
  const { stdout } = await execFileAsync(process.execPath, ["--import", "tsx", CHILD]);
  const result = JSON.parse(stdout) as { beforeKb: number; afterKb: number; released: boolean; kept: number };
  // ~47 MB were written and ~1.5 MB are kept: free() left nearly all of it resident, trim() returns most of it.
  assert.ok(result.released, JSON.stringify(result));
  assert.ok(result.beforeKb - result.afterKb > 30 * 1024, `RssAnon ${result.beforeKb} -> ${result.afterKb} kB`);
  assert.is(result.kept, 62);
});

addonTest("the agent (the built bin) loads the addon and trims after its start-up collection", async () => {
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
    const entry = JSON.parse(line) as { released?: unknown; trimMs?: unknown };
    assert.type(entry.released, "boolean", `the trim ran (a missing addon logs no "released"): ${line}`);
    assert.type(entry.trimMs, "number");
    assert.not.match(agent.output(), /malloc_trim addon not loaded/);
  } finally {
    await agent.stop();
  }
});

test("a missing addon is reported with the loader's reason, not thrown", () => {
  const missing = loadMallocTrim("../../build/no-such-addon.node");
  assert.is(missing.trim, undefined);
  assert.match("reason" in missing ? missing.reason : "", /no-such-addon\.node/);
});

test.run();
