// The bin's shebang starts node with MALLOC_ARENA_MAX=02 (fewer glibc arenas, less retained memory); that setting
// is vigie's own: the application it supervises (and its checks and reload commands, started the same way) gets the
// environment vigie was given. A value the user gave (node started without the bin) is passed on untouched.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { VIGIE_CLI } from "../../helpers/cluster.js";
import { freePort, waitFor } from "../../helpers/ports.js";

/**
 * Runs `vigie agent --dev` supervising an app that writes its environment to a file; returns the agent's own
 * environment at start (/proc) and the app's. `launcher` is how the agent is started: the bin itself, or node.
 */
async function environments(
  dir: string,
  launcher: { command: string; args: string[] },
  env: Record<string, string>,
): Promise<{ agent: string[]; app: string[] }> {
  const appEnvFile = join(dir, `app-env-${Math.random().toString(36).slice(2)}.txt`);
  const config = join(dir, "vigie.yaml");
  await writeFile(
    config,
    `exec:\n  command: ["sh", "-c", "env > ${appEnvFile}.tmp && mv ${appEnvFile}.tmp ${appEnvFile} && exec sleep 60"]\n`,
  );
  const clientUrl = `http://127.0.0.1:${await freePort()}`;
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const { NODE_OPTIONS: _inherited, MALLOC_ARENA_MAX: _given, ...baseEnv } = process.env;
  const child = spawn(
    launcher.command,
    [
      ...launcher.args,
      "agent",
      "--dev",
      "--config",
      config,
      "--listen-client",
      clientUrl,
      "--listen-peer",
      peerUrl,
      "--log-level",
      "warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...baseEnv, ...env } },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  try {
    const app = await waitFor(
      "the supervised app's environment",
      async () => {
        if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}: ${stderr}`);
        return await readFile(appEnvFile, "utf8").then(
          (text) => text.split("\n"),
          () => undefined,
        );
      },
      15_000,
    );
    const agent = (await readFile(`/proc/${child.pid}/environ`, "utf8")).split("\0");
    return { agent, app };
  } finally {
    child.kill("SIGKILL");
  }
}

test("the bin's malloc setting reaches node but not the application it supervises", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-malloc-env-"));
  try {
    const { agent, app } = await environments(dir, { command: VIGIE_CLI, args: [] }, { VIGIE_TEST_MARKER: "kept" });
    assert.ok(agent.includes("MALLOC_ARENA_MAX=02"), `agent environment: ${agent.join(" ")}`);
    assert.ok(app.includes("VIGIE_TEST_MARKER=kept"), "the app gets vigie's environment");
    assert.not.ok(
      app.some((line) => line.startsWith("MALLOC_ARENA_MAX=")),
      "the app inherited the bin's MALLOC_ARENA_MAX",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a MALLOC_ARENA_MAX the user gave is passed on to the application", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-malloc-env-"));
  try {
    const { app } = await environments(
      dir,
      { command: process.execPath, args: [VIGIE_CLI] },
      { MALLOC_ARENA_MAX: "4" },
    );
    assert.ok(app.includes("MALLOC_ARENA_MAX=4"), `app environment: ${app.join(" ")}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
