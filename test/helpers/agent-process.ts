// A `vigie agent` started from the built bin as a child process, its stdout and stderr gathered for assertions and
// failure messages, and stopped the way an operator stops it: SIGTERM, so that it cleans up (a dev agent removes
// its data dir), then SIGKILL if it has not exited in time.
import { type ChildProcess, spawn } from "node:child_process";
import { VIGIE_CLI } from "./cluster.js";

export interface AgentProcess {
  readonly child: ChildProcess;
  /** Everything the agent wrote so far, stdout and stderr interleaved. */
  output(): string;
  stop(): Promise<void>;
}

export function spawnAgent(args: readonly string[], env: NodeJS.ProcessEnv = process.env): AgentProcess {
  const child = spawn(VIGIE_CLI, ["agent", ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  let output = "";
  const gather = (chunk: Buffer) => {
    output += chunk.toString("utf8");
  };
  child.stdout?.on("data", gather);
  child.stderr?.on("data", gather);
  return { child, output: () => output, stop: () => stopGracefully(child) };
}

/** SIGTERM, waited for; SIGKILL after `killAfterMs`. Returns at once for a process that has already exited. */
export async function stopGracefully(child: ChildProcess, killAfterMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  await exited;
  clearTimeout(killer);
}
