// Loads the optional addon that gives back memory the agent no longer uses: malloc's free pages, and the resident
// pages of node's linker tables (native/release-memory.c, built by `npm ci`). The path is the same from dist/agent/
// (the bin) and src/agent/ (tests under tsx): both sit two levels below the checkout.
import { createRequire } from "node:module";

export const RELEASE_MEMORY_ADDON = "../../build/release-memory.node";

export interface ReleaseMemory {
  /** Gives malloc's free pages back to the system (glibc's malloc_trim); true when there were some. */
  trimMalloc(): boolean;
  /**
   * Takes node's dynamic-linking tables, read nearly only at start-up, out of the resident set: the bytes dropped,
   * or -1 where they are not in a read-only segment of their own or pagemap is unreadable (nothing is dropped).
   */
  dropLinkerTables(): number;
}

export type ReleaseMemoryLoad = { addon: ReleaseMemory } | { addon: undefined; reason: string };

export function loadReleaseMemory(path: string = RELEASE_MEMORY_ADDON): ReleaseMemoryLoad {
  try {
    const addon = createRequire(import.meta.url)(path) as Partial<Record<keyof ReleaseMemory, unknown>>;
    for (const name of ["trimMalloc", "dropLinkerTables"] as const)
      if (typeof addon[name] !== "function") return { addon: undefined, reason: `the addon has no ${name}()` };
    return { addon: addon as ReleaseMemory };
  } catch (error) {
    return { addon: undefined, reason: error instanceof Error ? error.message.split("\n")[0]! : String(error) };
  }
}
