// `npm test` and `npm run test:unit`: runs uvu over the given directory and pattern, passing its output through, and
// fails when a test neither passed nor was skipped. uvu 0.5 swallows an error thrown by a `before` hook: the file's
// tests do not run, nothing is printed about it, and uvu exits 0. A missing program that CI requires
// (requireTools throws under VIGIE_REQUIRE_INTEGRATION=1) or a server that did not start would then pass CI with
// its checks never run. The summary uvu prints last tells them apart: Total counts them, Passed does not.
import { spawn } from "node:child_process";

const SUMMARY_TAIL_CHARS = 4096;

const uvu = spawn(process.execPath, ["--import", "tsx", "node_modules/uvu/bin.js", ...process.argv.slice(2)], {
  stdio: ["inherit", "pipe", "inherit"],
  // uvu colours its output only for a terminal; its stdout is a pipe now.
  env: { ...process.env, FORCE_COLOR: process.env.FORCE_COLOR ?? (process.stdout.isTTY ? "1" : "0") },
});

let tail = "";
uvu.stdout.on("data", (chunk: Buffer) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString()).slice(-SUMMARY_TAIL_CHARS);
});

uvu.on("exit", (code, signal) => {
  if (signal !== null) {
    console.error(`test: uvu was killed by ${signal}`);
    process.exit(1);
  }
  if (code !== 0) process.exit(code ?? 1);
  // Without the colour codes uvu prints on a terminal.
  const plain = tail.replace(/\x1b\[[0-9;]*m/g, "");
  const count = (label: string) => Number(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "m").exec(plain)?.[1]);
  const total = count("Total");
  const passed = count("Passed");
  const skipped = count("Skipped");
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
