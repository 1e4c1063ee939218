// Founding members of a static cluster never load node's built-in copy of undici (the global fetch): it was loaded
// for one probe request at start-up and then held ~10 MB for the agent's whole life.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ClusterFixture } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/ports.js";

const BUILT_IN_UNDICI = "NativeModule internal/deps/undici/undici";

test("a 2-member static cluster forms without loading node's built-in undici", async () => {
  const listDir = await mkdtemp(join(tmpdir(), "vigie-agent-modules-"));
  // Each agent writes the node built-ins it loaded, every 50 ms, to <listDir>/builtins-<pid>.txt: written aside and
  // renamed, since a reader of a file being rewritten in place can find it empty (seen in CI).
  const preload = join(listDir, "list-builtins.cjs");
  await writeFile(
    preload,
    `const fs = require("node:fs");\n` +
      `const list = ${JSON.stringify(listDir)} + "/builtins-" + process.pid + ".txt";\n` +
      `setInterval(() => { fs.writeFileSync(list + ".tmp", process.moduleLoadList.join("\\n")); ` +
      `fs.renameSync(list + ".tmp", list); }, 50).unref();\n`,
  );
  const fixture = await ClusterFixture.create("agent-modules", { NODE_OPTIONS: `--require ${preload}` });
  try {
    // Fresh data dirs: each member probed the other at start-up, before its client API answered.
    const agents = await fixture.startStatic(["m1", "m2"]);
    await new Promise((r) => setTimeout(r, 300));
    for (const agent of agents) {
      const builtins = await waitFor(`${agent.name}'s list of built-ins`, async () =>
        (await readFile(join(listDir, `builtins-${agent.pid}.txt`), "utf8")).split("\n"),
      );
      assert.ok(builtins.includes("NativeModule http"), "the list holds the agent's built-ins");
      assert.not.ok(builtins.includes(BUILT_IN_UNDICI), `${agent.name} loaded node's built-in undici (fetch)`);
    }
  } finally {
    await fixture.cleanup();
    await rm(listDir, { recursive: true, force: true });
  }
});

test.run();
