// Watches the template sources and the config file (chokidar), so editing a template re-renders it and editing the
// config applies it. Editors save by rename or by truncate+write; a short stability wait avoids reading half a file.
// Each file's directory is watched too: Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink, which
// changes what `s.hbs -> ..data/s.hbs` resolves to without touching the inode a watch on the file sees. An event in
// a directory reports every watched file in it; the sidecar ignores those whose text did not change.
import { type FSWatcher as DirectoryWatcher, watch as watchDirectory } from "node:fs";
import { dirname } from "node:path";
import { type FSWatcher, watch } from "chokidar";
import type { Logger } from "../log.js";

/** Directory events come in bursts (a ConfigMap swap is a symlink, a rename and a removal): report once after it. */
const DIRECTORY_SETTLE_MS = 50;

export class FileWatch {
  private watcher: FSWatcher | undefined;
  private watched = new Set<string>();
  private readonly directories = new Map<string, { watcher: DirectoryWatcher; timer: NodeJS.Timeout | undefined }>();

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
    this.setDirectories(new Set([...wanted].map((path) => dirname(path))));
  }

  async close(): Promise<void> {
    this.setDirectories(new Set());
    await this.watcher?.close();
    this.watcher = undefined;
  }

  private setDirectories(wanted: ReadonlySet<string>): void {
    for (const [directory, entry] of this.directories) {
      if (wanted.has(directory)) continue;
      clearTimeout(entry.timer);
      entry.watcher.close();
      this.directories.delete(directory);
    }
    for (const directory of wanted) {
      if (this.directories.has(directory)) continue;
      try {
        const watcher = watchDirectory(directory, { persistent: false }, () => this.directoryChanged(directory));
        watcher.on("error", (error) => this.logger.warn({ err: error, directory }, "directory watch error"));
        this.directories.set(directory, { watcher, timer: undefined });
      } catch (error) {
        // The file watch still works; only a symlink swap in this directory goes unseen.
        this.logger.warn({ err: error, directory }, "cannot watch the directory");
      }
    }
  }

  private directoryChanged(directory: string): void {
    const entry = this.directories.get(directory);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      for (const path of this.watched) if (dirname(path) === directory) this.onChange(path);
    }, DIRECTORY_SETTLE_MS);
  }
}
