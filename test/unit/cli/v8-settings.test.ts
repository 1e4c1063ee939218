// The V8 settings made at run time (src/v8-settings.ts), each checked in a child process: the flags are known to this
// node (an unknown one is only printed, not thrown) and take effect (the old generation's growing factor, as V8's
// GC trace prints it), and node's gc() is handed over without --expose-gc on the command line (the agent's idle
// collection needs it however node was started).
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";

const SETTINGS = join(dirname(fileURLToPath(import.meta.url)), "../../../src/v8-settings.ts");
const execFileAsync = promisify(execFile);

const CHILD_SOURCE = `
import { applyRuntimeV8Flags, fullGc } from ${JSON.stringify(SETTINGS)};
applyRuntimeV8Flags();
const exposedAtStart = typeof globalThis.gc;
let garbage = { payload: new Array(100_000).fill("x") };
const ref = new WeakRef(garbage);
garbage = undefined;
await new Promise((resolve) => setTimeout(resolve, 10)); // a WeakRef's target lives until the job that made it ends
const gc = fullGc();
gc();
await new Promise((resolve) => setTimeout(resolve, 10));
process.stdout.write(JSON.stringify({ exposedAtStart, gcType: typeof gc, collected: ref.deref() === undefined }));
`;

test("fullGc() hands over node's gc() when node was started without --expose-gc, and it collects", async () => {
  const { NODE_OPTIONS: _inherited, ...env } = process.env;
  const { stdout } = await execFileAsync(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", CHILD_SOURCE],
    { env },
  );
  assert.equal(JSON.parse(stdout), { exposedAtStart: "undefined", gcType: "function", collected: true });
});

/** Runs a child that allocates ~300k objects and collects; returns V8's last heap-growing factor and its stderr. */
async function growingFactor(apply: boolean): Promise<{ factor: string | undefined; stderr: string }> {
  const source = `
    import { applyRuntimeV8Flags } from ${JSON.stringify(SETTINGS)};
    if (${apply}) applyRuntimeV8Flags();
    const keep = [];
    for (let i = 0; i < 300_000; i++) keep.push({ i, s: "x" + i });
    globalThis.gc();
  `;
  const { stdout, stderr } = await execFileAsync(
    process.execPath,
    ["--expose-gc", "--trace-gc-verbose", "--import", "tsx", "--input-type=module", "-e", source],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const limits = [...stdout.matchAll(/\[HeapController\] Limit: .*\(([\d.]+)\)/g)];
  return { factor: limits.at(-1)?.[1], stderr };
}

test("applyRuntimeV8Flags: every flag is known to this node, and the old generation grows by at most 2x", async () => {
  const applied = await growingFactor(true);
  assert.is(applied.stderr, "", "setFlagsFromString prints an unknown flag to stderr instead of throwing");
  assert.is(applied.factor, "2.0", "V8's trace (--trace-gc-verbose) prints the growing factor it chose");
  // The check tells the two apart: without the flags V8 allows its default 4x.
  assert.is((await growingFactor(false)).factor, "4.0");
});

test.run();
