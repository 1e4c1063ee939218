// `npm test` and `npm run test:unit`: runs uvu over the given directory and pattern, passing its output through, and
// fails when a test neither passed nor was skipped. uvu 0.5 swallows an error thrown by a `before` hook: the file's
// tests do not run, nothing is printed about it, and uvu exits 0. A missing program that CI requires
// (requireTools throws under VIGIE_REQUIRE_INTEGRATION=1) or a server that did not start would then pass CI with
// its checks never run. The summary uvu prints last tells them apart: Total counts them, Passed does not.
// When tests fail, their reports are printed again after the summary (see failure-report.ts).
import { spawn } from "node:child_process";
import { failureReport, stripColour } from "./failure-report.js";

const uvu = spawn(process.execPath, ["--import", "tsx", "node_modules/uvu/bin.js", ...process.argv.slice(2)], {
  stdio: ["inherit", "pipe", "inherit"],
  // uvu colours its output only for a terminal; its stdout is a pipe now.
  env: { ...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? (process.stdout.isTTY ? "1" : "0") },
});

// The whole output is kept (a full run prints under 1 MB) to find the failures in it.
const chunks: Buffer[] = [];
/**
 * Once uvu has printed its summary every test has run; a process still alive after this long is held by a handle a
 * test left open (a server, a child, an interval), often on a failed check's path, and would hang CI until its own
 * time limit. It is killed and the run fails; the failures it had, if any, are still reported.
 */
const EXIT_GRACE_MS = Number(process.env.VIGIE_TEST_EXIT_GRACE_MS ?? 60_000);
let lingering: NodeJS.Timeout | undefined;
let killedLingering = false;
/** The last characters printed: the summary's "Duration:" may arrive split across two chunks. */
let tail = "";
uvu.stdout.on("data", (chunk: Buffer) => {
  process.stdout.write(chunk);
  chunks.push(chunk);
  tail = (tail + stripColour(chunk.toString())).slice(-256);
  if (lingering === undefined && /Duration:/.test(tail)) {
    lingering = setTimeout(() => {
      killedLingering = true;
      console.error(
        `test: every test ran, but the test process was still alive ${EXIT_GRACE_MS} ms after uvu's summary: ` +
          "a test left a server, a child process or a timer open. Killed.",
      );
      uvu.kill("SIGKILL");
    }, EXIT_GRACE_MS);
  }
});

uvu.on("exit", (code, signal) => {
  clearTimeout(lingering);
  if (signal !== null && !killedLingering) {
    console.error(`test: uvu was killed by ${signal}`);
    process.exit(1);
  }
  const plain = stripColour(Buffer.concat(chunks).toString());
  if (code !== 0) {
    const failed = count(plain, "Total") - count(plain, "Passed") - count(plain, "Skipped");
    const report = failureReport(plain);
    if (report !== "") {
      console.error(`\ntest: ${failed} ${failed === 1 ? "test" : "tests"} failed; uvu's reports again:\n\n${report}\n`);
    }
    process.exit(code ?? 1);
  }
  const total = count(plain, "Total");
  const passed = count(plain, "Passed");
  const skipped = count(plain, "Skipped");
  if (!Number.isInteger(total) || !Number.isInteger(passed) || !Number.isInteger(skipped)) {
    console.error("test: uvu printed no Total/Passed/Skipped summary");
    process.exit(1);
  }
  const notRun = total - passed - skipped;
  if (notRun > 0) {
    console.error(
      `test: ${notRun} of ${total} tests neither passed nor were skipped: a before hook threw, which uvu does not ` +
        "report. The file is the one whose line shows fewer passed than it has, e.g. (0 / 12).",
    );
    process.exit(1);
  }
});

/** A number from the summary uvu prints last ("  Passed:    12"); NaN when there is none. */
function count(plain: string, label: string): number {
  const matches = [...plain.matchAll(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "gm"))];
  return Number(matches.at(-1)?.[1]);
}
