// Runs the built CLI (dist/cli.js) as a real process against one store URL, for the CLI integration tests that
// check exact bytes, exit codes and signals (test/integration/cli-edges.test.ts, cli-formats.test.ts).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Test } from "uvu";
import { startDevAgent } from "./vigie-agent.js";

export const CLI = join(import.meta.dirname, "..", "..", "dist", "cli.js");

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
}

/**
 * One `vigie agent --dev` for a test file's CLI runs: started before its tests (after checking the CLI is built),
 * stopped after them. `cli` runs the built CLI against it; `url` is its client URL, for tests that spawn it their way.
 */
export function useDevAgent(test: Test): { cli(args: string[], stdin?: Buffer): Promise<CliRun>; url(): string } {
  let agent: Awaited<ReturnType<typeof startDevAgent>> | undefined;
  test.before(async () => {
    requireBuiltCli();
    agent = await startDevAgent();
  });
  test.after(async () => {
    await agent?.stop();
  });
  const url = () => {
    if (agent === undefined) throw new Error("the dev agent is not started (useDevAgent's before hook did not run)");
    return agent.url;
  };
  return { cli: (args, stdin) => runCliAgainst(url(), args, stdin), url };
}

/** Runs `vigie ARGS --endpoints URL`; `stdin` (when given) is piped in, otherwise stdin is /dev/null. */
export async function runCliAgainst(url: string, args: string[], stdin?: Buffer): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args, "--endpoints", url], {
    stdio: [stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  child.stdin?.end(stdin);
  const stdout: Buffer[] = [];
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("exit", (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  return { code, signal, stdout: Buffer.concat(stdout), stderr };
}

/** A long-running CLI process (watch, keep-alive) whose output the test reads as it comes. */
export interface RunningCli {
  child: ReturnType<typeof spawn>;
  stdout(): string;
  stderr(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

/** Starts `vigie ARGS` (the test passes --endpoints itself) with stdin at /dev/null. */
export function startCli(args: string[]): RunningCli {
  return startProcess(process.execPath, [CLI, ...args]);
}

/** Starts `command ARGS` (e.g. a shell pipeline around the CLI) with stdin at /dev/null, its output collected. */
export function startProcess(command: string, args: string[]): RunningCli {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("exit", (code, signal) => resolve([code, signal])),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Starts a long-running command (watch, keep-alive), waits for its first line, sends `signal`, returns the end. */
export async function interruptAfterFirstLine(url: string, args: string[], signal: NodeJS.Signals): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args, "--endpoints", url], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("exit", (c, s) => resolve([c, s])),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no output from ${args.join(" ")}: ${stderr}`)), 10_000);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes("\n")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.kill(signal);
  const [code, ended] = await exited;
  return { code, signal: ended, stdout: Buffer.from(stdout), stderr };
}
