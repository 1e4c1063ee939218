// Exec mode: vigie starts the application as its child and supervises it, so vigie can be a container's entrypoint.
// It forwards SIGTERM/SIGINT, sends the reload signal when files change, restarts the application with backoff
// when it dies on its own, and reports the application's exit code when shutting down.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import type { ExecConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { ReloadFailedError } from "./errors.js";

const RESTART_BACKOFF_MIN_MS = 100;
const RESTART_BACKOFF_MAX_MS = 10_000;
/** An application that ran this long is considered healthy again: the backoff resets. */
const RESTART_BACKOFF_RESET_MS = 30_000;
/** After SIGTERM, the application gets this long before SIGKILL. */
const STOP_GRACE_MS = 10_000;

export class ExecSupervisor {
  private child: ChildProcess | undefined;
  private stopping = false;
  private started = false;
  private backoffMs = RESTART_BACKOFF_MIN_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private lastExitCode = 0;
  private readonly exitWaiters: Array<(code: number) => void> = [];
  private readonly forward = (signal: NodeJS.Signals) => {
    void this.stop(signal);
  };

  constructor(
    private readonly config: ExecConfig,
    private readonly logger: Logger,
    /** Called once the application exited for good (shutdown, or restart: false). */
    private readonly onFinalExit: (code: number) => void = () => undefined,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the application. With `forwardSignals`, vigie's own SIGTERM/SIGINT stop it (entrypoint mode). */
  start(options: { forwardSignals: boolean }): void {
    assert.ok(!this.started, "the application is already supervised");
    this.started = true;
    if (this.stopping) return;
    if (options.forwardSignals) {
      process.on("SIGTERM", this.forward);
      process.on("SIGINT", this.forward);
    }
    this.spawnChild();
  }

  /**
   * Sends the configured reload signal (or `signal`) to the running application. Before the application has been
   * started there is nothing to tell: it reads the files when it starts, so this returns undefined.
   */
  reload(signal: NodeJS.Signals = this.config.reload_signal as NodeJS.Signals): number | undefined {
    if (!this.started) return undefined;
    const child = this.child;
    const target = `${signal} to exec child`;
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      throw new ReloadFailedError(target, "the application is not running (it is being restarted)");
    }
    try {
      child.kill(signal);
    } catch (error) {
      throw new ReloadFailedError(target, (error as Error).message);
    }
    return child.pid;
  }

  /** Stops the application (SIGTERM, SIGKILL after a grace period) and resolves with its exit code. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number> {
    process.off("SIGTERM", this.forward);
    process.off("SIGINT", this.forward);
    this.stopping = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return this.lastExitCode;
    const exited = new Promise<number>((resolveExit) => this.exitWaiters.push(resolveExit));
    child.kill(signal);
    const killer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    const code = await exited;
    clearTimeout(killer);
    return code;
  }

  private spawnChild(): void {
    const [program, ...args] = this.config.command as [string, ...string[]];
    const startedAt = Date.now();
    const child = spawn(program, args, { stdio: "inherit", shell: false });
    this.child = child;
    let spawnFailed = false;
    child.once("error", (error) => {
      spawnFailed = true;
      this.logger.error({ err: error, command: this.config.command }, "cannot start the application");
    });
    // "close", not "exit": a program that cannot be started (ENOENT) emits only "error" and "close".
    child.once("close", (code, signal) => {
      // Shell conventions: cannot run → 127; killed by a signal → 128 + its number.
      const exitCode = spawnFailed ? 127 : (code ?? 128 + signalNumber(signal));
      this.lastExitCode = exitCode;
      this.child = undefined;
      for (const waiter of this.exitWaiters.splice(0)) waiter(exitCode);
      if (this.stopping || !this.config.restart) {
        this.logger.info({ exitCode, signal }, "application exited");
        this.stopping = true;
        this.onFinalExit(exitCode);
        return;
      }
      if (Date.now() - startedAt > RESTART_BACKOFF_RESET_MS) this.backoffMs = RESTART_BACKOFF_MIN_MS;
      this.logger.warn({ exitCode, signal, restartInMs: this.backoffMs }, "application died; restarting");
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (!this.stopping) this.spawnChild();
      }, this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, RESTART_BACKOFF_MAX_MS);
    });
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  if (signal === null) return 0;
  return (constants.signals as Partial<Record<string, number>>)[signal] ?? 1;
}
