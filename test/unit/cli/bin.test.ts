// The shipped bin, run the way an operator runs it (executed directly, its shebang choosing node's flags): the
// process is node itself with the memory flags (no wrapper process in between, so the pid a supervisor holds is the
// agent's), and SIGTERM stops the agent cleanly with exit code 0.
import { spawn } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { VIGIE_CLI } from "../../helpers/cluster.js";
import { freePort, waitFor } from "../../helpers/ports.js";

const MEMORY_FLAGS = ["--max-semi-space-size=1", "--v8-pool-size=1"];

test("dist/cli.js is executable and its shebang starts node with the memory flags", () => {
  accessSync(VIGIE_CLI, constants.X_OK);
  const firstLine = readFileSync(VIGIE_CLI, "utf8").split("\n", 1)[0];
  assert.is(firstLine, `#!/usr/bin/env -S node ${MEMORY_FLAGS.join(" ")}`);
  // Linux before 5.1 (still in long-term distributions) cuts a shebang line at 127 bytes: a cut flag is an error.
  assert.ok(Buffer.byteLength(firstLine ?? "") <= 127, `shebang of ${Buffer.byteLength(firstLine ?? "")} bytes`);
});

test("the executed bin is node itself with the flags, and SIGTERM ends it with exit code 0", async () => {
  const clientUrl = `http://127.0.0.1:${await freePort()}`;
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  // NODE_OPTIONS cleared: the flags must come from the shebang alone.
  const { NODE_OPTIONS: _inherited, ...env } = process.env;
  const child = spawn(
    VIGIE_CLI,
    ["agent", "--dev", "--listen-client", clientUrl, "--listen-peer", peerUrl, "--log-level", "warn"],
    { stdio: ["ignore", "ignore", "pipe"], env },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  try {
    await waitFor(
      "the agent's /health",
      async () => {
        if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}: ${stderr}`);
        const response = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
        await response.body?.cancel();
        return response.ok;
      },
      15_000,
    );
    const argv = readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0");
    assert.ok(/(^|\/)node[^/]*$/.test(argv[0] ?? ""), `pid ${child.pid} runs ${argv[0]}, not node`);
    assert.equal(argv.slice(1, 2 + MEMORY_FLAGS.length), [...MEMORY_FLAGS, VIGIE_CLI], `node argv ${argv.join(" ")}`);
    child.kill("SIGTERM");
    const ending = await exited;
    assert.equal(ending, { code: 0, signal: null }, stderr);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});

test.run();
