// Runs the built `vigie agent` as real processes for the agent-*.test.ts files: started in a temp dir of the
// suite's, killed at the end of the suite whatever happened, with their output kept for messages and assertions.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VIGIE_CLI } from "../helpers/cluster.js";
import { waitFor } from "../helpers/ports.js";

/** The longest a test waits for an agent to stop (SIGTERM) or to fail on bad input before killing it. */
const AGENT_END_MAX_MS = 10_000;

export interface Agent {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export class AgentKit {
  private readonly running: Agent[] = [];
  private tempDir = "";

  constructor(private readonly label: string) {}

  /** The suite's temp dir (agents run there; data dirs and config files go there). */
  get dir(): string {
    return this.tempDir;
  }

  async setUp(): Promise<void> {
    this.tempDir = await mkdtemp(join(tmpdir(), `vigie-${this.label}-`));
  }

  async tearDown(): Promise<void> {
    for (const agent of this.running) {
      if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill("SIGKILL");
      await agent.exited;
    }
    await rm(this.tempDir, { recursive: true, force: true });
  }

  /** Starts `vigie agent ARGS` (through `command prefix...` when given, e.g. runuser). */
  start(args: string[], command = VIGIE_CLI, prefix: string[] = []): Agent {
    const child = spawn(command, [...prefix, "agent", ...args], {
      cwd: this.tempDir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const append = (chunk: Buffer) => {
      output += chunk.toString("utf8");
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    const agent = { child, output: () => output, exited };
    this.running.push(agent);
    return agent;
  }

  /** Runs `vigie agent ARGS` to its end (bad input must end it within seconds): its exit code and output. */
  async fails(args: string[]): Promise<{ code: number | null; output: string }> {
    const agent = this.start(args);
    const timer = setTimeout(() => agent.child.kill("SIGKILL"), AGENT_END_MAX_MS);
    const code = await agent.exited;
    clearTimeout(timer);
    return { code, output: agent.output() };
  }

  /** Starts `vigie agent ARGS --listen-client clientUrl` and waits until it reports healthy there. */
  async startHealthy(args: string[], clientUrl: string): Promise<Agent> {
    const agent = this.start([...args, "--listen-client", clientUrl]);
    await waitFor(
      `health of ${clientUrl}`,
      async () => {
        if (agent.child.exitCode !== null) throw new Error(`agent exited: ${agent.output()}`);
        return (await fetch(`${clientUrl}/health`)).status === 200;
      },
      15_000,
    );
    return agent;
  }
}

/** SIGTERM, then the exit code (SIGKILL after AGENT_END_MAX_MS). */
export async function stop(agent: Agent): Promise<number | null> {
  agent.child.kill("SIGTERM");
  const timer = setTimeout(() => agent.child.kill("SIGKILL"), AGENT_END_MAX_MS);
  const code = await agent.exited;
  clearTimeout(timer);
  return code;
}
