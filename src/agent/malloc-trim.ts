// Loads the optional addon that calls glibc's malloc_trim (native/malloc-trim.c, built by `npm ci`). The path is
// the same from dist/agent/ (the bin) and src/agent/ (tests under tsx): both sit two levels below the checkout.
import { createRequire } from "node:module";

export const MALLOC_TRIM_ADDON = "../../build/malloc-trim.node";

/** Gives free malloc pages back to the system; true when there were some. */
export type MallocTrim = () => boolean;

export type MallocTrimLoad = { trim: MallocTrim } | { trim: undefined; reason: string };

export function loadMallocTrim(path: string = MALLOC_TRIM_ADDON): MallocTrimLoad {
  try {
    const addon = createRequire(import.meta.url)(path) as { trim?: unknown };
    if (typeof addon.trim !== "function") return { trim: undefined, reason: "the addon has no trim()" };
    return { trim: addon.trim as MallocTrim };
  } catch (error) {
    return { trim: undefined, reason: error instanceof Error ? error.message.split("\n")[0]! : String(error) };
  }
}
