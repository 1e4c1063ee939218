// Watches the template sources and the config file (chokidar), so editing a template re-renders it and editing the
// config applies it. Editors save by rename or by truncate+write; a short stability wait avoids reading half a file.
import { type FSWatcher, watch } from "chokidar";
import type { Logger } from "../log.js";

export class FileWatch {
  private watcher: FSWatcher | undefined;
  private watched = new Set<string>();

  constructor(
    private readonly logger: Logger,
    private readonly onChange: (path: string) => void,
  ) {}

  /** Watches exactly `paths` (absolute), adding and removing as needed. */
  async set(paths: Iterable<string>): Promise<void> {
    const wanted = new Set(paths);
    // chokidar never emits "ready" for an empty path list: start watching only once there is something to watch
    // (an agent with no config file and no templates must still start).
    if (this.watcher === undefined && wanted.size === 0) return;
    if (this.watcher === undefined) {
      this.watcher = watch([...wanted], {
        ignoreInitial: true,
        awaitWriteFinish: { stabilityThreshold: 30, pollInterval: 10 },
      });
      this.watcher.on("change", (path) => this.onChange(path));
      this.watcher.on("add", (path) => this.onChange(path));
      this.watcher.on("error", (error) => this.logger.warn({ err: error }, "file watch error"));
      await new Promise<void>((resolveReady) => this.watcher?.once("ready", () => resolveReady()));
    } else {
      const added = [...wanted].filter((path) => !this.watched.has(path));
      const removed = [...this.watched].filter((path) => !wanted.has(path));
      if (added.length > 0) this.watcher.add(added);
      if (removed.length > 0) await this.watcher.unwatch(removed);
    }
    this.watched = wanted;
  }

  async close(): Promise<void> {
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
