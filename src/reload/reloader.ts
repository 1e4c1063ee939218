// Telling the application about new files, once per target per batch: templates written together that share a
// reload target trigger it once, after all of them are in place. When a reload command fails, the files it was
// meant to load are put back, so the application and its files stay consistent with each other.
import type { ReloadConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { Counter, Histogram, MetricsRegistry } from "../metrics.js";
import { runArgv } from "../render/run.js";
import { ReloadFailedError } from "./errors.js";
import type { ExecSupervisor } from "./exec.js";
import { signalPidfile, signalProcessMatch } from "./signal.js";

/** One file that changed in this batch and the way to undo it. */
export interface ChangedFile {
  template: string;
  reload: ReloadConfig | undefined;
  restore: () => Promise<void>;
  /** The file did not exist before: there is nothing to put back, so a failed reload command keeps it. */
  created?: boolean;
}

export interface ReloadOutcome {
  target: string;
  templates: string[];
  ok: boolean;
  error?: string;
  /** Templates whose previous file was put back after the reload command failed: their render is to be retried. */
  restored?: string[];
}

/** A stable identity for a reload target: equal configs mean the same application. */
export function describeTarget(reload: ReloadConfig): string {
  if ("command" in reload) return `command ${JSON.stringify(reload.command)}`;
  if ("exec" in reload) return `${reload.signal ?? "reload signal"} to exec child`;
  if ("pidfile" in reload) {
    return `${reload.signal} to pidfile ${reload.pidfile}${reload.process === undefined ? "" : ` (${reload.process})`}`;
  }
  return `${reload.signal} to process "${reload.process}"`;
}

export class Reloader {
  private readonly reloads: Counter;
  private readonly failures: Counter;
  private readonly seconds: Histogram;

  constructor(
    private readonly logger: Logger,
    metrics: MetricsRegistry,
    private readonly exec: () => ExecSupervisor | undefined,
  ) {
    this.reloads = metrics.counter("vigie_reloads_total", "Reloads performed (signals sent or commands run)");
    this.failures = metrics.counter("vigie_reload_failures_total", "Reloads that failed");
    this.seconds = metrics.histogram("vigie_reload_duration_seconds", "Time to signal the app or run its command");
  }

  async reloadBatch(changed: readonly ChangedFile[]): Promise<ReloadOutcome[]> {
    const groups = new Map<string, { reload: ReloadConfig; files: ChangedFile[] }>();
    for (const file of changed) {
      if (file.reload === undefined) continue;
      const target = describeTarget(file.reload);
      const group = groups.get(target);
      if (group) group.files.push(file);
      else groups.set(target, { reload: file.reload, files: [file] });
    }
    return await Promise.all(
      [...groups].map(async ([target, group]) => await this.reloadTarget(target, group.reload, group.files)),
    );
  }

  private async reloadTarget(target: string, reload: ReloadConfig, files: ChangedFile[]): Promise<ReloadOutcome> {
    const templates = files.map((file) => file.template);
    const started = performance.now();
    try {
      const detail = await this.perform(target, reload);
      this.reloads.inc();
      this.seconds.observe((performance.now() - started) / 1000);
      this.logger.info({ target, templates, ...detail }, "application reloaded");
      return { target, templates, ok: true };
    } catch (error) {
      this.failures.inc();
      const message = (error as Error).message;
      if ("command" in reload) {
        // The application refused the new files: put the old ones back so what is on disk is what it runs. A file
        // that did not exist is kept: removing it cannot help, and would leave an application that starts later
        // (the command failed because it is not running yet) without its config.
        const restoreErrors: string[] = [];
        const restored: string[] = [];
        const kept = files.filter((file) => file.created === true).map((file) => file.template);
        for (const file of files) {
          if (file.created === true) continue;
          await file.restore().then(
            () => restored.push(file.template),
            (restoreError: unknown) => restoreErrors.push(`${file.template}: ${(restoreError as Error).message}`),
          );
        }
        this.logger.error(
          { target, templates, reloadError: message, restored, kept, restoreErrors },
          restoreErrors.length === 0
            ? "reload command failed; previous files restored, render retried later"
            : "reload command failed and restoring the previous files failed too",
        );
        return { target, templates, ok: false, error: message, restored };
      }
      this.logger.error({ target, templates, reloadError: message }, "reload failed; files stay written");
      return { target, templates, ok: false, error: message };
    }
  }

  private async perform(target: string, reload: ReloadConfig): Promise<Record<string, unknown>> {
    if ("command" in reload) {
      const result = await runArgv(reload.command, { timeoutMs: reload.timeout });
      if (!result.ok) throw new ReloadFailedError(target, result.summary);
      return { command: reload.command };
    }
    if ("exec" in reload) {
      const supervisor = this.exec();
      if (supervisor === undefined) throw new ReloadFailedError(target, "no exec: application is configured");
      const pid = supervisor.reload(reload.signal as NodeJS.Signals | undefined);
      return pid === undefined
        ? { skipped: "the application has not started yet; it reads the files at start" }
        : { pid };
    }
    if ("pidfile" in reload) {
      return { pid: await signalPidfile(reload.signal as NodeJS.Signals, reload.pidfile, reload.process) };
    }
    return { pid: await signalProcessMatch(reload.signal as NodeJS.Signals, reload.process) };
  }
}
