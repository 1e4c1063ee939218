// Runs an argv without a shell, with a timeout and a bounded capture of its output. Used for template `check`
// commands, reload commands and `exec` health checks: values from the store can end up in a template's output,
// never in a command line interpreted by a shell.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";

/** Output kept from a command, for the error message: the tail is where compilers and linters say what is wrong. */
const OUTPUT_TAIL_MAX_BYTES = 4096;
/**
 * How long to keep reading output after the command exited. A command that starts a daemon (`nginx`, `sh -c
 * "x &"`) leaves a grandchild holding our pipes open; its exit status is what counts, so we stop reading soon after.
 */
const OUTPUT_AFTER_EXIT_GRACE_MS = 100;

export interface RunResult {
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  output: string;
  /** How it ended, without output: "exit 1", "timed out after 200 ms", "killed by SIGTERM", "cannot run x: ...". */
  status: string;
  /** One line for logs: "exit 1: <last output lines>". */
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
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;
    // Its own process group, so a timeout kills everything it started, not only the direct child (`sh -c "a; b"`
    // leaves `a` running if only sh is killed, and `a` holds the pipes).
    const child = spawn(program, args, {
      shell: false,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_MAX_BYTES);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // The group is already gone (everything exited), or the child never started: nothing left to kill.
        child.kill("SIGKILL");
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      // Whatever still holds the pipes (a daemon it started) must not keep us, or the event loop, waiting.
      child.stdout.destroy();
      child.stderr.destroy();
      const last = output.trim().split("\n").slice(-3).join(" | ");
      let status: string;
      if (spawnError) status = `cannot run ${program}: ${spawnError.message}`;
      else if (timedOut) status = `timed out after ${options.timeoutMs} ms`;
      else if (signal) status = `killed by ${signal}`;
      else status = `exit ${exitCode}`;
      const summary = last !== "" && !spawnError ? `${status}: ${last}` : status;
      resolveRun({
        ok: !spawnError && !timedOut && exitCode === 0,
        exitCode,
        signal,
        timedOut,
        output,
        status,
        summary,
      });
    };
    child.once("error", (error) => finish(null, null, error));
    // `exit`, not `close`: close waits until every holder of the pipes is gone, which for a command that
    // daemonizes is never. The output normally is complete by `close`, which follows `exit` within microseconds.
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      graceTimer = setTimeout(() => finish(code, signal), OUTPUT_AFTER_EXIT_GRACE_MS);
      child.once("close", () => finish(code, signal));
    });
  });
}
