// Starts `vigie agent --dev` from the built dist/cli.js as a real process on free loopback ports, for the
// compatibility suites. A failure to start is an error (never a skip): these suites are the proof of compatibility.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopGracefully } from "./agent-process.js";
import type { ApiTarget } from "./api-suite.js";
import { freePort, waitFor } from "./ports.js";

const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");

export async function startDevAgent(): Promise<ApiTarget> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const dir = await mkdtemp(join(tmpdir(), "vigie-agent-test-"));
  const url = `http://127.0.0.1:${await freePort()}`;
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  // The bin itself, as an operator runs it (its shebang gives node the agent's heap flags).
  const child: ChildProcess = spawn(
    CLI,
    [
      "agent",
      "--dev",
      "--name",
      "dev",
      "--data-dir",
      join(dir, "data"),
      "--listen-client",
      url,
      "--listen-peer",
      peerUrl,
      "--log-level",
      "warn",
    ],
    { cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  const stop = async () => {
    // The agent deregisters and flushes on SIGTERM; it gets 5 s before SIGKILL.
    await stopGracefully(child, 5_000);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `vigie agent --dev on ${url}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`the agent exited with ${child.exitCode}: ${stderr}`);
        const response = await fetch(`${url}/health`);
        return ((await response.json()) as { health?: string }).health === "true";
      },
      15_000,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}
