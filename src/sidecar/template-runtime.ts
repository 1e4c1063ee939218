// One configured template at run time: its compiled source, the dependencies of its last render, and the steps
// from "the data changed" to "the new file is in place": render from the mirror (loading anything not loaded yet,
// so nothing is rendered from partial data), then stage, check and write.
import { readFile } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { resolveFromConfig } from "../config/load.js";
import type { TemplateConfig } from "../config/schema.js";
import { ConfigError, VigieError } from "../errors.js";
import type { ChangedFile } from "../reload/reloader.js";
import { EmptyTemplateError } from "../render/errors.js";
import { Dependencies } from "../render/reader.js";
import {
  type CompiledTemplate,
  compileTemplate,
  renderTemplate,
  TEMPLATE_SOURCE_MAX_BYTES,
} from "../render/template.js";
import { restorePrevious, type WriteSpec, writeRendered } from "../render/writer.js";
import type { Wait } from "../watch/scheduler.js";
import type { StoreSync } from "../watch/sync.js";

/** A template that keeps reading new data on every render (e.g. keys named by other keys) is cut off here. */
const LOAD_ROUNDS_MAX = 16;

export type RenderOutcome =
  | { kind: "unchanged"; revision: number }
  | { kind: "written"; revision: number; changed: ChangedFile }
  | { kind: "rendered"; revision: number; output: string }
  | { kind: "failed"; stage: "compile" | "render" | "check" | "write" | "store"; error: Error };

export class TemplateRuntime {
  readonly name: string;
  readonly sourcePath: string;
  readonly spec: WriteSpec;
  readonly wait: Wait | undefined;
  compiled: CompiledTemplate | undefined;
  compileError: Error | undefined;
  /** The source text last read (compiled or not): a file event that leaves it unchanged is ignored. */
  private sourceText: string | undefined;
  /** What the last render read (also after a failed render): a change to any of it renders again. */
  deps: Dependencies | undefined;
  renders = 0;
  lastError: string | undefined;
  lastRevision = 0;

  constructor(
    readonly config: TemplateConfig,
    baseDir: string,
    name: string,
  ) {
    this.name = name;
    this.sourcePath = resolveFromConfig(baseDir, config.source);
    this.spec = {
      name,
      destination: resolveFromConfig(baseDir, config.destination),
      mode: config.mode,
      owner: config.owner,
      group: config.group,
      check: config.check,
      checkTimeoutMs: config.check_timeout,
      backup: config.backup,
      write: config.write,
    };
    this.wait = config.wait === undefined ? undefined : { minMs: config.wait.min, maxMs: config.wait.max };
  }

  /** (Re)reads and compiles the source. On failure the previous compiled version stays in use. */
  async compile(): Promise<boolean> {
    return (await this.reread(true)) !== "failed";
  }

  /**
   * Reads the source again after a file event and compiles it when its text changed. "unchanged" when it is what
   * was last read: an event in its directory about another file, or a rewrite of the same text.
   */
  async reread(force = false): Promise<"compiled" | "unchanged" | "failed"> {
    let text: string;
    try {
      const source = await readFile(this.sourcePath);
      if (source.length > TEMPLATE_SOURCE_MAX_BYTES) {
        throw new VigieError(
          "VIGIE_ERR_TEMPLATE_SYNTAX",
          `${this.sourcePath}: larger than ${TEMPLATE_SOURCE_MAX_BYTES} bytes`,
        );
      }
      // A save by truncate-then-write is seen between the two (under load, more than the watch's settle time
      // apart): the empty template rendered an empty file that `php -l` accepts, and replaced the config with it.
      if (source.length === 0) throw new EmptyTemplateError(this.sourcePath);
      text = source.toString("utf8");
    } catch (error) {
      this.sourceText = undefined;
      this.compileError = error as Error;
      return "failed";
    }
    if (!force && text === this.sourceText) return "unchanged";
    this.sourceText = text;
    try {
      this.compiled = compileTemplate(this.sourcePath, text);
      this.compileError = undefined;
      return "compiled";
    } catch (error) {
      this.compileError = error as Error;
      return "failed";
    }
  }

  /** Whether a change to `key` can change this template's output. */
  dependsOn(key: string): boolean {
    return this.deps?.covers(key) ?? false;
  }

  /**
   * Renders without keeping the result, to learn what it reads that is not loaded yet. The sidecar loads what a
   * whole batch misses in one go (parallel requests) instead of one template after the other.
   */
  missingData(sync: StoreSync): { keys: Set<string>; prefixes: Set<string> } {
    const deps = new Dependencies();
    if (this.compiled !== undefined) {
      try {
        renderTemplate(this.compiled, sync.mirror, deps);
      } catch {
        // Failures are reported by the real render that follows.
      }
    }
    return { keys: deps.missingKeys, prefixes: deps.missingPrefixes };
  }

  /** Renders from the mirror, loading whatever the template reads that is not loaded yet. */
  async render(sync: StoreSync): Promise<RenderOutcome & { kind: "rendered" | "failed" }> {
    if (this.compiled === undefined) {
      return { kind: "failed", stage: "compile", error: this.compileError ?? new Error("not compiled") };
    }
    for (let round = 0; round < LOAD_ROUNDS_MAX; round++) {
      const deps = new Dependencies();
      let output: string | undefined;
      let failure: Error | undefined;
      try {
        output = renderTemplate(this.compiled, sync.mirror, deps).output;
      } catch (error) {
        failure = error as Error;
      }
      const revision = sync.mirror.revision;
      this.deps = deps;
      if (!deps.complete) {
        // Read data that is not loaded: whatever came out (or failed) is meaningless. Load it and render again.
        try {
          await sync.load(deps.missingKeys, deps.missingPrefixes);
        } catch (error) {
          return { kind: "failed", stage: "store", error: error as Error };
        }
        continue;
      }
      this.renders += 1;
      this.lastRevision = revision;
      if (failure !== undefined) return { kind: "failed", stage: "render", error: failure };
      return { kind: "rendered", revision, output: output ?? "" };
    }
    return {
      kind: "failed",
      stage: "render",
      error: new VigieError(
        "VIGIE_ERR_RENDER",
        `${this.name}: still reading unloaded keys after ${LOAD_ROUNDS_MAX} loads`,
      ),
    };
  }

  /** Renders and writes the destination when its bytes change. */
  async renderAndWrite(sync: StoreSync, deferDirectorySync?: (directory: string) => void): Promise<RenderOutcome> {
    const rendered = await this.render(sync);
    if (rendered.kind === "failed") return rendered;
    try {
      const outcome = await writeRendered(this.spec, Buffer.from(rendered.output, "utf8"), deferDirectorySync);
      if (!outcome.changed) return { kind: "unchanged", revision: rendered.revision };
      const previous = outcome.previous;
      return {
        kind: "written",
        revision: rendered.revision,
        changed: {
          template: this.name,
          reload: this.config.reload,
          restore: async () => await restorePrevious(this.spec, previous),
          created: previous === undefined,
        },
      };
    } catch (error) {
      const stage = (error as VigieError).code === "VIGIE_ERR_CHECK_FAILED" ? "check" : "write";
      return { kind: "failed", stage, error: error as Error };
    }
  }
}

/**
 * Names for logs and metrics: `name` when given, else the source's base name; duplicates get `#2`, `#3`.
 * Throws ConfigError when two templates share a destination: each would overwrite the other's file on every change
 * (and reload the application each time), which consul-template allows and nobody wants.
 */
export function buildRuntimes(templates: readonly TemplateConfig[], baseDir: string): TemplateRuntime[] {
  const seen = new Map<string, number>();
  const destinations = new Map<string, number>();
  return templates.map((config, index) => {
    const base = config.name ?? basename(config.source);
    const count = (seen.get(base) ?? 0) + 1;
    seen.set(base, count);
    // The schema accepts any duration; a timeout of 0 would fail every check or reload, so it is a config error.
    if (config.check_timeout <= 0) throw new ConfigError(`templates[${index}].check_timeout: must be more than 0`);
    if (config.reload !== undefined && "command" in config.reload && config.reload.timeout <= 0) {
      throw new ConfigError(`templates[${index}].reload.timeout: must be more than 0`);
    }
    const runtime = new TemplateRuntime(config, baseDir, count === 1 ? base : `${base}#${count}`);
    // Normalized (`a/./b`, `a//b`); two paths to one file through a symlink are not caught.
    const destination = resolve(runtime.spec.destination);
    const first = destinations.get(destination);
    if (first !== undefined) {
      throw new ConfigError(
        `templates[${index}].destination: ${destination} is already the destination of templates[${first}]`,
      );
    }
    destinations.set(destination, index);
    return runtime;
  });
}
