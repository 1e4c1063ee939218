// The V8 settings vigie can change while node runs. Those that only take effect when node starts are in the bin's
// shebang (cli.ts), which has room for few: older kernels cut a shebang line at 127 bytes. These are set by the
// bin's first statement, before any command's code loads (README, "Memory").
import v8 from "node:v8";
import vm from "node:vm";

/**
 * - `--heap-growing-percent=100`: the old generation at most doubles the live heap before the next full GC, instead
 *   of growing up to 4x. The garbage that a small young generation promotes during a write burst otherwise stayed
 *   resident long after it (a leader loaded with 100,000 keys sat at 190 MB). 50% saved another 5-10 MB but cost
 *   ~12% more CPU per put. V8 reads it at each GC.
 * - `--liftoff-only`: WebAssembly (undici's HTTP parser) stays in its baseline code. Optimizing it left ~9 MB of
 *   compiler memory behind in some agents, for no measurable gain (client CPU per undici request was the same).
 *   V8 reads it when a module compiles, which undici does when it first connects.
 */
export function applyRuntimeV8Flags(): void {
  v8.setFlagsFromString("--heap-growing-percent=100");
  v8.setFlagsFromString("--liftoff-only");
}

/**
 * node's `gc()` (a full, blocking collection), with or without --expose-gc on node's command line: set at run time,
 * the flag exposes `gc` in the contexts created after it, so a new context hands it over.
 */
export function fullGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === "function") return exposed;
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}
