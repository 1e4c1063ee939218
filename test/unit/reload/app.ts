// Starts test/fixtures/sidecar/signal-app.mjs as a real child process and collects the signals it reports.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const SIGNAL_APP = fileURLToPath(new URL("../../fixtures/sidecar/signal-app.mjs", import.meta.url));

export interface SignalApp {
  child: ChildProcess;
  lines: string[];
  /** Resolves when a line equal to `line` has been printed. */
  waitForLine(line: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startSignalApp(args: string[]): Promise<SignalApp> {
  const child = spawn(process.execPath, [SIGNAL_APP, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  let buffered = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split("\n");
    buffered = parts.pop() ?? "";
    lines.push(...parts);
    for (const listener of listeners) listener();
  });
  const waitForLine = (line: string, timeoutMs = 5000) =>
    new Promise<void>((resolveWait, reject) => {
      const check = () => {
        if (lines.includes(line)) {
          listeners.delete(check);
          clearTimeout(timer);
          resolveWait();
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out waiting for "${line}"; got ${JSON.stringify(lines)}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  await waitForLine("ready");
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  };
  return { child, lines, waitForLine, stop };
}
