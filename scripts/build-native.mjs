// Builds native/release-memory.c into build/release-memory.node (`npm ci` runs it as the install script; plain JS,
// as it runs before anything is built). The addon is optional: without a C compiler, or off Linux, the agent runs
// the same but keeps resident the malloc memory a write burst freed and the linker tables (README, "Memory"). So a
// failed build warns and exits 0, unless VIGIE_REQUIRE_NATIVE=1 (CI), where it must not go unnoticed.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "native", "release-memory.c");
const output = join(root, "build", "release-memory.node");
const required = process.env.VIGIE_REQUIRE_NATIVE === "1";

function giveUp(reason) {
  const message = `vigie: build/release-memory.node not built (${reason}); the agent will run without returning freed malloc memory and its linker tables to the system (README, "Memory")`;
  if (required) {
    console.error(`${message}\nVIGIE_REQUIRE_NATIVE=1: failing`);
    process.exit(1);
  }
  console.warn(message);
  process.exit(0);
}

if (process.platform !== "linux")
  giveUp(`the addon calls glibc and reads Linux's /proc/self/pagemap, and this is ${process.platform}`);
// musl (Alpine) has no malloc_trim, and its free() already gives memory back: nothing to build.
const { glibcVersionRuntime } = /** @type {{ glibcVersionRuntime?: string }} */ (process.report.getReport().header);
if (glibcVersionRuntime === undefined) giveUp("malloc_trim is glibc's, and this node does not run on glibc");
// CC may carry arguments, as make's does ("ccache gcc", "gcc -m64").
const [compiler = "cc", ...compilerArgs] = (process.env.CC ?? "")
  .trim()
  .split(/\s+/)
  .filter((part) => part !== "");
mkdirSync(dirname(output), { recursive: true });
// Built beside the addon, then renamed over it: an agent running from this checkout has the old file mapped, and
// a compiler writing into it in place would change the code under that agent's feet.
// A build killed midway leaves its file: gone at the next build.
for (const name of readdirSync(dirname(output)))
  if (/^release-memory\.node\.\d+\.tmp$/.test(name)) rmSync(join(dirname(output), name), { force: true });
const building = `${output}.${process.pid}.tmp`;
// Warnings fail the build only where the addon is required (CI): elsewhere a newer compiler's new warning must not
// cost a user the addon.
const strict = required ? ["-Werror"] : [];
const args = [...compilerArgs, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", ...strict, "-o", building, source];
const result = spawnSync(compiler, args, { stdio: ["ignore", "inherit", "inherit"] });
if (result.error || result.status !== 0) rmSync(building, { force: true });
if (result.error) giveUp(`${compiler}: ${result.error.message}`);
if (result.status !== 0) giveUp(`${compiler} ${args.join(" ")} exited with ${result.status ?? result.signal}`);
renameSync(building, output);
console.log(`vigie: built ${output}`);
