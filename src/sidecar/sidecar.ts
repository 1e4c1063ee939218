// The sidecar: keeps every template rendered from the store and tells the application.
//   store events → StoreSync (mirror) → which templates read the changed keys → QuiescenceScheduler
//   → one batch: render each from the mirror, stage/check/write → Reloader (once per target) → metrics and logs.
// Batches run one at a time; changes that arrive meanwhile form the next batch. A failure in any step keeps the
// previous file, is logged with the template's name and reason, counted, and retried on the next change (a store
// that could not be read, or a reload command that refused the file, also after a backoff).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { loadConfig } from "../config/load.js";
import type { VigieConfig } from "../config/schema.js";
import { syncDirectory } from "../directory-sync.js";
import { ConfigError, StoreUnavailableError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Counter, Histogram, MetricsRegistry } from "../metrics.js";
import { ExecSupervisor } from "../reload/exec.js";
import { type ChangedFile, Reloader, type ReloadOutcome } from "../reload/reloader.js";
import { StoreClient } from "../store/client.js";
import { QuiescenceScheduler } from "../watch/scheduler.js";
import { StoreSync } from "../watch/sync.js";
import { FileWatch } from "./file-watch.js";
import { buildRuntimes, type TemplateRuntime } from "./template-runtime.js";

export interface SidecarOptions {
  config: VigieConfig;
  /** Watched for changes when given; an invalid new version is logged and ignored. */
  configFile: string | undefined;
  baseDir: string;
  endpoints: string[];
  logger: Logger;
  metrics: MetricsRegistry;
  /** Forward vigie's SIGTERM/SIGINT to the exec child (entrypoint mode). Default true when `exec:` is set. */
  forwardSignals?: boolean;
}

export interface TemplateStatus {
  name: string;
  destination: string;
  renders: number;
  revision: number;
  error?: string;
}

export interface SidecarStatus {
  /** False while the store cannot be reached (files stay as they are); `reason` says why. */
  healthy: boolean;
  reason?: string;
  /** The store revision the sidecar's view is consistent at (0 before the first load). */
  revision: number;
  templates: TemplateStatus[];
}

export interface Sidecar {
  status(): SidecarStatus;
  /** Resolves after every template has been rendered (or failed) once. */
  readonly firstRender: Promise<void>;
  /** Resolves with the exec child's exit code when it ends for good (exec mode only). */
  readonly execExit: Promise<number> | undefined;
  /** Stops watching and rendering; in exec mode stops the application and returns its exit code. */
  stop(): Promise<number | undefined>;
}

/** Retry delay after the store could not be read for a render (doubles up to the max). */
const STORE_RETRY_MIN_MS = 200;
const STORE_RETRY_MAX_MS = 5_000;
/**
 * Retry delay after a reload command failed and the previous file was put back (doubles up to the max): the render
 * is retried without waiting for the next change, so the files converge once the application accepts them again.
 */
const RELOAD_RETRY_MIN_MS = 1_000;
const RELOAD_RETRY_MAX_MS = 60_000;

class SidecarRuntime implements Sidecar {
  private templates: TemplateRuntime[] = [];
  private readonly client: StoreClient;
  private readonly sync: StoreSync;
  private readonly scheduler: QuiescenceScheduler;
  private readonly reloader: Reloader;
  private readonly files: FileWatch;
  private readonly exec: ExecSupervisor | undefined;
  readonly execExit: Promise<number> | undefined;
  private readonly log: Logger;
  private batchRunning = false;
  /** The batch loop in flight, awaited by stop() so that no file is written or reload run after stop() returns. */
  private batches: Promise<void> | undefined;
  /** Directory fsyncs still running in the thread pool; stop() waits for them too. */
  private readonly directorySyncs = new Set<Promise<void>>();
  private readonly waiting = new Set<string>();
  private readonly retryDelayMs = new Map<string, number>();
  private readonly reloadRetryDelayMs = new Map<string, number>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private stopped = false;
  /** Exec mode: whether the application was started (once every destination was in place). */
  private appStarted = false;
  private appWaitLogged = false;
  /**
   * The config file as last read (without command-line overrides): what a changed file is compared with to tell
   * which start-only fields the user edited. Flags override the file, so options.config would differ on every change.
   */
  private fileConfig: VigieConfig;
  /** The config file's text as last read: a directory event that leaves it unchanged is ignored. */
  private configText: string | undefined;
  private resolveFirstRender: () => void = () => undefined;
  readonly firstRender: Promise<void>;
  private firstPending = new Set<string>();
  private readonly renderCount: Counter;
  private readonly failureCount: Counter;
  private readonly writeCount: Counter;
  private readonly renderSeconds: Histogram;

  constructor(private readonly options: SidecarOptions) {
    this.log = options.logger.child({ component: "sidecar" });
    this.fileConfig = options.config;
    this.client = new StoreClient({ endpoints: options.endpoints });
    this.sync = new StoreSync(this.client, options.logger.child({ component: "watch" }), options.metrics, (keys) =>
      this.onStoreChange(keys),
    );
    this.scheduler = new QuiescenceScheduler((names) => this.enqueue(names));
    if (options.config.exec !== undefined) {
      let resolveExit: (code: number) => void = () => undefined;
      this.execExit = new Promise((r) => {
        resolveExit = r;
      });
      this.exec = new ExecSupervisor(options.config.exec, options.logger.child({ component: "exec" }), resolveExit);
    }
    this.reloader = new Reloader(options.logger.child({ component: "reload" }), options.metrics, () => this.exec);
    this.files = new FileWatch(this.log, (path) => void this.onFileChange(path));
    this.firstRender = new Promise((r) => {
      this.resolveFirstRender = r;
    });
    const metrics = options.metrics;
    this.renderCount = metrics.counter("vigie_renders_total", "Template renders, by template");
    this.failureCount = metrics.counter("vigie_render_failures_total", "Failed renders, by template and stage");
    this.writeCount = metrics.counter("vigie_files_written_total", "Destination files rewritten, by template");
    this.renderSeconds = metrics.histogram("vigie_render_duration_seconds", "Render + write time per template");
  }

  async start(): Promise<void> {
    if (this.options.configFile !== undefined) {
      // Read again without the flags (the caller just read it, so this fails only if it was edited meanwhile).
      this.configText = await readFile(this.options.configFile, "utf8").catch(() => undefined);
      this.fileConfig = await loadConfig(this.options.configFile).then(
        (loaded) => loaded.config,
        () => this.options.config,
      );
    }
    await this.applyTemplates(this.options.config);
    if (this.exec !== undefined) void this.firstRender.then(() => this.startAppWhenFilesReady());
  }

  /**
   * Like consul-template: the application starts once every template has been rendered once and every destination
   * is in place (rendered now, or kept from an earlier run when its render fails), so it reads complete files at
   * start-up and is not signalled during its own initialisation. A destination still missing (a key not written
   * yet, a store not reachable) holds it back until a later render writes it; each batch calls this again.
   */
  private startAppWhenFilesReady(): void {
    const exec = this.exec;
    if (exec === undefined || this.appStarted || this.stopped || this.firstPending.size > 0) return;
    const missing = this.templates.filter((t) => !existsSync(t.spec.destination)).map((t) => t.name);
    if (missing.length > 0) {
      if (!this.appWaitLogged) {
        this.appWaitLogged = true;
        this.log.warn({ templates: missing }, "the application starts once these templates have rendered");
      }
      return;
    }
    this.appStarted = true;
    exec.start({ forwardSignals: this.options.forwardSignals ?? true });
  }

  status(): SidecarStatus {
    const store = this.sync.status();
    return {
      healthy: store.healthy,
      ...(store.reason === undefined ? {} : { reason: store.reason }),
      revision: this.sync.mirror.revision,
      templates: this.templates.map((t) => ({
        name: t.name,
        destination: t.spec.destination,
        renders: t.renders,
        revision: t.lastRevision,
        ...(t.lastError === undefined ? {} : { error: t.lastError }),
      })),
    };
  }

  async stop(): Promise<number | undefined> {
    this.stopped = true;
    this.scheduler.stop();
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.sync.stop();
    // The batch in flight finishes the template it is rendering and the reloads of the files already written (so
    // the application matches its files), then stops. Bounded: store requests and reload commands have timeouts.
    await this.batches;
    await Promise.all(this.directorySyncs);
    await this.files.close();
    await this.client.close();
    return await this.exec?.stop();
  }

  /** Installs a template list (at start or after a config change), compiles it and renders everything. */
  private async applyTemplates(config: VigieConfig): Promise<void> {
    // Both throw ConfigError before anything changes: at start the agent refuses to run; later, the running config
    // stays.
    const runtimes = buildRuntimes(config.templates, this.options.baseDir);
    config.templates.forEach((template, index) => {
      if (template.reload !== undefined && "exec" in template.reload && this.exec === undefined) {
        throw new ConfigError(`templates[${index}].reload: exec: true needs an exec: section (the application to run)`);
      }
    });
    for (const runtime of runtimes) {
      if (!(await runtime.compile())) this.reportFailure(runtime, "compile", runtime.compileError!);
      const check = runtime.config.check;
      if (check !== undefined && !check.some((part) => part.includes("{{src}}"))) {
        // Without {{src}} the check judges whatever is in place now, not the new file: almost always a mistake.
        this.log.warn({ template: runtime.name, check }, "check command does not mention {{src}} (the staged file)");
      }
    }
    for (const old of this.templates) this.scheduler.cancel(old.name);
    this.templates = runtimes;
    this.firstPending = new Set(runtimes.map((t) => t.name));
    if (runtimes.length === 0) this.resolveFirstRender();
    const watched = runtimes.map((t) => t.sourcePath);
    if (this.options.configFile !== undefined) watched.push(this.options.configFile);
    await this.files.set(watched);
    for (const runtime of runtimes) this.scheduler.trigger(runtime.name, undefined);
  }

  private onStoreChange(keys: ReadonlySet<string>): void {
    for (const template of this.templates) {
      for (const key of keys) {
        if (template.dependsOn(key)) {
          this.scheduler.trigger(template.name, template.wait);
          break;
        }
      }
    }
  }

  private async onFileChange(path: string): Promise<void> {
    if (this.stopped) return;
    if (path === this.options.configFile) {
      // An event in the file's directory about another file (rendered files may share it), or the same text written
      // again: not parsed and validated again. Compared with the text last read, valid or not.
      const text = await readFile(path, "utf8").catch(() => undefined);
      if (text !== undefined && text === this.configText) return;
      this.configText = text;
      try {
        const loaded = await loadConfig(path);
        if (JSON.stringify(loaded.config) === JSON.stringify(this.fileConfig)) return;
        const fields = startOnlyChanges(this.fileConfig, loaded.config);
        if (fields.length > 0) {
          // Only templates: apply live; the store, the replica, services and exec are set up once at start.
          this.log.warn(
            { file: path, fields },
            "config fields that apply only at start changed; restart vigie to apply them",
          );
        }
        this.log.info({ file: path, templates: loaded.config.templates.length }, "config changed; applying it");
        await this.applyTemplates(loaded.config);
        // Only once applied: a refused file is not what runs, so the next edit is compared with what does.
        this.fileConfig = loaded.config;
      } catch (error) {
        this.log.error(
          { file: path, error: (error as Error).message },
          "config changed but is invalid; keeping the running config",
        );
      }
      return;
    }
    for (const template of this.templates) {
      if (template.sourcePath !== path) continue;
      const outcome = await template.reread();
      if (outcome === "compiled") {
        this.log.info({ template: template.name }, "template changed; rendering it");
        this.scheduler.trigger(template.name, undefined);
      } else if (outcome === "failed") {
        this.reportFailure(template, "compile", template.compileError!);
      }
    }
  }

  private enqueue(names: string[]): void {
    for (const name of names) this.waiting.add(name);
    if (!this.batchRunning) this.batches = this.runBatches();
  }

  private async runBatches(): Promise<void> {
    assert.ok(!this.batchRunning);
    this.batchRunning = true;
    try {
      while (this.waiting.size > 0 && !this.stopped) {
        const names = new Set(this.waiting);
        this.waiting.clear();
        await this.runBatch(this.templates.filter((t) => names.has(t.name)));
      }
    } finally {
      this.batchRunning = false;
    }
  }

  private async runBatch(batch: TemplateRuntime[]): Promise<void> {
    const changed: ChangedFile[] = [];
    // Directories whose renames still need an fsync: synced after the reloads, off the put → reload path.
    const directories = new Set<string>();
    const defer = (directory: string) => directories.add(directory);
    await this.prefetch(batch);
    for (const template of batch) {
      if (this.stopped) break;
      const started = performance.now();
      const outcome = await template.renderAndWrite(this.sync, defer);
      this.renderSeconds.observe((performance.now() - started) / 1000);
      this.firstPending.delete(template.name);
      if (outcome.kind === "failed") {
        this.reportFailure(template, outcome.stage, outcome.error);
        if (outcome.stage === "store" || outcome.error instanceof StoreUnavailableError) this.retryLater(template);
        continue;
      }
      this.retryDelayMs.delete(template.name);
      this.renderCount.inc(1, { template: template.name });
      // A broken edit of the source stays reported while the last good version keeps rendering.
      template.lastError = template.compileError?.message;
      if (outcome.kind === "written") {
        this.writeCount.inc(1, { template: template.name });
        this.log.info(
          { template: template.name, destination: template.spec.destination, revision: outcome.revision },
          "file written",
        );
        changed.push(outcome.changed);
      }
    }
    if (this.firstPending.size === 0) this.resolveFirstRender();
    // Even when stopping: a file written without its reload would stay unapplied after a restart (it is unchanged).
    if (changed.length > 0) this.afterReloads(await this.reloader.reloadBatch(changed));
    // After the reloads: an application started now reads these files, and must not get their reload signal.
    this.startAppWhenFilesReady();
    for (const directory of directories) this.syncDirectoryLater(directory);
  }

  /** Templates whose files were put back after a failed reload command render again later, with backoff. */
  private afterReloads(outcomes: readonly ReloadOutcome[]): void {
    for (const outcome of outcomes) {
      if (outcome.ok) {
        for (const name of outcome.templates) this.reloadRetryDelayMs.delete(name);
        continue;
      }
      for (const name of outcome.restored ?? []) {
        const template = this.templates.find((t) => t.name === name);
        if (template === undefined) continue;
        const delayMs = this.reloadRetryDelayMs.get(name) ?? RELOAD_RETRY_MIN_MS;
        this.reloadRetryDelayMs.set(name, Math.min(delayMs * 2, RELOAD_RETRY_MAX_MS));
        this.retryAfter(template, delayMs);
      }
    }
  }

  /**
   * Makes the batch's renames durable in the thread pool, not on the event loop: a blocking fsync here held up the
   * next request for its whole duration (with an embedded store, the next write and so the next put → file). The
   * application already has its files; a crash before this fsync can only bring back the previous, valid file,
   * which the first render after a restart replaces.
   */
  private syncDirectoryLater(directory: string): void {
    const syncing: Promise<void> = syncDirectory(directory)
      .catch((error: unknown) => {
        this.log.warn({ directory, reason: (error as Error).message }, "cannot fsync the directory");
      })
      .finally(() => this.directorySyncs.delete(syncing));
    this.directorySyncs.add(syncing);
  }

  /** Loads, in one parallel round, the data a batch's templates read and the mirror does not hold yet. */
  private async prefetch(batch: TemplateRuntime[]): Promise<void> {
    if (batch.length < 2) return;
    const keys = new Set<string>();
    const prefixes = new Set<string>();
    for (const template of batch) {
      const missing = template.missingData(this.sync);
      for (const key of missing.keys) keys.add(key);
      for (const prefix of missing.prefixes) prefixes.add(prefix);
    }
    if (keys.size === 0 && prefixes.size === 0) return;
    // A failure here is reported per template by the renders that follow (they load again and fail the same way).
    await this.sync.load(keys, prefixes).catch(() => undefined);
  }

  private reportFailure(template: TemplateRuntime, stage: string, error: Error): void {
    template.lastError = error.message;
    this.failureCount.inc(1, { template: template.name, stage });
    this.log.error(
      { template: template.name, stage, reason: error.message },
      "template not applied; previous file kept",
    );
  }

  private retryLater(template: TemplateRuntime): void {
    const delayMs = this.retryDelayMs.get(template.name) ?? STORE_RETRY_MIN_MS;
    this.retryDelayMs.set(template.name, Math.min(delayMs * 2, STORE_RETRY_MAX_MS));
    this.retryAfter(template, delayMs);
  }

  private retryAfter(template: TemplateRuntime, delayMs: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      this.scheduler.trigger(template.name, undefined);
    }, delayMs);
    this.retryTimers.add(timer);
  }
}

/** The top-level config fields, other than `templates:`, whose value differs between the running and a new config. */
export function startOnlyChanges(running: VigieConfig, next: VigieConfig): string[] {
  const fields = new Set([...Object.keys(running), ...Object.keys(next)]) as Set<keyof VigieConfig>;
  fields.delete("templates");
  return [...fields].filter((field) => JSON.stringify(running[field]) !== JSON.stringify(next[field])).sort();
}

/** Starts the sidecar; the first renders run in the background (await `firstRender` to wait for them). */
export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const sidecar = new SidecarRuntime(options);
  await sidecar.start();
  return sidecar;
}
