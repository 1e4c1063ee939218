// Signalling the application, only once the target process is verified: a pid read from a pidfile must be alive
// (and match `process` when given); a command-line match must find exactly one process. Pids are reused by the
// kernel, so signalling an unverified pid could hit an unrelated process.
// Small synchronous reads (a pidfile, /proc/<pid>/cmdline): cheaper than a thread-pool round trip on the hot path.
import { readFileSync } from "node:fs";
import psList from "ps-list";
import { isProcessAlive } from "../process-alive.js";
import { ReloadFailedError } from "./errors.js";

/** A pidfile holds a pid and a newline; anything much larger is not a pidfile. */
const PIDFILE_MAX_BYTES = 64;
/** The largest pid Linux can hand out (pid_max's ceiling, 2^22); a larger number is not a pid. */
const PID_MAX = 4_194_304;

/** The command line of `pid` (Linux /proc; ps-list elsewhere), or undefined when the process is gone. */
export async function commandLineOf(pid: number): Promise<string | undefined> {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`);
    return raw.toString("utf8").replace(/\0+$/, "").replaceAll("\0", " ");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT" && process.platform === "linux") return undefined;
  }
  const found = (await psList()).find((entry) => entry.pid === pid);
  return found?.cmd ?? found?.name;
}

export async function readPidfile(pidfile: string, target: string): Promise<number> {
  let text: string;
  try {
    const raw = readFileSync(pidfile);
    if (raw.length > PIDFILE_MAX_BYTES) throw new ReloadFailedError(target, `pidfile ${pidfile} is not a pidfile`);
    text = raw.toString("utf8").trim();
  } catch (error) {
    if (error instanceof ReloadFailedError) throw error;
    throw new ReloadFailedError(target, `cannot read pidfile ${pidfile}: ${(error as Error).message}`);
  }
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > PID_MAX) {
    throw new ReloadFailedError(
      target,
      `pidfile ${pidfile} does not hold a pid (${JSON.stringify(text.slice(0, 20))})`,
    );
  }
  return Number(text);
}

function send(pid: number, signal: NodeJS.Signals, target: string): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    throw new ReloadFailedError(target, `cannot send ${signal} to pid ${pid}: ${(error as Error).message}`);
  }
}

/** Signals the process named by `pidfile`; with `processMatch`, its command line must contain that text. */
export async function signalPidfile(
  signal: NodeJS.Signals,
  pidfile: string,
  processMatch: string | undefined,
): Promise<number> {
  const target = `${signal} to pidfile ${pidfile}`;
  const pid = await readPidfile(pidfile, target);
  // A pidfile naming vigie (a mix-up with its own pidfile) would make it signal itself: SIGHUP ends a Node process.
  if (pid === process.pid) throw new ReloadFailedError(target, `pid ${pid} is vigie itself; not signalling it`);
  // In a container the application may be pid 1; on a host pid 1 is init. Only a matching command line tells.
  if (pid === 1 && processMatch === undefined) {
    throw new ReloadFailedError(target, "pid 1 is the init process; set process: to confirm it is the application");
  }
  if (!isProcessAlive(pid)) throw new ReloadFailedError(target, `process ${pid} is not running (stale pidfile)`);
  if (processMatch !== undefined) {
    const commandLine = await commandLineOf(pid);
    if (commandLine === undefined) throw new ReloadFailedError(target, `process ${pid} is not running`);
    if (!commandLine.includes(processMatch)) {
      throw new ReloadFailedError(
        target,
        `process ${pid} runs "${commandLine.slice(0, 200)}", which does not contain "${processMatch}"; not signalling it`,
      );
    }
  }
  send(pid, signal, target);
  return pid;
}

/** Signals the one process whose command line contains `processMatch`; refuses on zero or several matches. */
export async function signalProcessMatch(signal: NodeJS.Signals, processMatch: string): Promise<number> {
  const target = `${signal} to process "${processMatch}"`;
  const matches = (await psList())
    .filter((entry) => entry.pid !== process.pid && (entry.cmd ?? entry.name).includes(processMatch))
    .map((entry) => entry.pid);
  if (matches.length === 0) throw new ReloadFailedError(target, "no running process matches");
  if (matches.length > 1) {
    throw new ReloadFailedError(
      target,
      `${matches.length} processes match (pids ${matches.join(", ")}); refusing to guess`,
    );
  }
  const pid = matches[0]!;
  send(pid, signal, target);
  return pid;
}
