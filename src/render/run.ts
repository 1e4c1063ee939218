// Runs an argv without a shell, with a timeout and a bounded capture of its output. Used for `check` commands and
// reload commands: values from the store can end up in a template's output, never in a command line interpreted
// by a shell.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";

/** Output kept from a command, for the error message: the tail is where compilers and linters say what is wrong. */
const OUTPUT_TAIL_MAX_BYTES = 4096;

export interface RunResult {
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
  /** One line for logs: "exit 1: <last output line>". */
  summary: string;
}

export async function runArgv(
  argv: readonly string[],
  options: { timeoutMs: number; cwd?: string },
): Promise<RunResult> {
  assert.ok(argv.length > 0 && argv[0] !== undefined, "runArgv needs a program");
  const [program, ...args] = argv as [string, ...string[]];
  return await new Promise((resolveRun) => {
    let output = "";
    let timedOut = false;
    const child = spawn(program, args, {
      shell: false,
      stdio: ["ignore", "pipe", "pipe"],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_MAX_BYTES);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs);
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      clearTimeout(timer);
      const last = output.trim().split("\n").slice(-3).join(" | ");
      let summary: string;
      if (spawnError) summary = `cannot run ${program}: ${spawnError.message}`;
      else if (timedOut) summary = `timed out after ${options.timeoutMs} ms`;
      else if (signal) summary = `killed by ${signal}`;
      else summary = `exit ${exitCode}`;
      if (last !== "" && !spawnError) summary += `: ${last}`;
      resolveRun({ ok: !spawnError && !timedOut && exitCode === 0, exitCode, signal, timedOut, output, summary });
    };
    child.once("error", (error) => finish(null, null, error));
    child.once("close", (code, signal) => finish(code, signal));
  });
}
