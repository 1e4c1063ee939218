// The V8 settings made at run time (src/v8-settings.ts): node's gc() without --expose-gc on the command line (the
// agent's idle collection needs it however node was started), checked in a child process started without it.
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

test.run();
