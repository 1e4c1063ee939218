// `npm test`'s runner (scripts/test.ts): a failure in an early file must be named again after uvu's summary, since
// CI shows only the end of a long run.
import { spawnSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { failureReport, stripColour } from "../../../scripts/failure-report.js";

function runFixtures() {
  const run = spawnSync(
    process.execPath,
    ["--import", "tsx", "scripts/test.ts", "test/fixtures/uvu-failing", "\\.fixture\\.ts$"],
    { encoding: "utf8", timeout: 60_000 },
  );
  return { status: run.status, stdout: stripColour(run.stdout), stderr: stripColour(run.stderr) };
}

test("the runner fails and repeats every failure, with its file, after the summary", () => {
  const run = runFixtures();
  assert.is(run.status, 1, run.stderr);
  const summaryAt = run.stdout.indexOf("Total:");
  assert.ok(summaryAt > 0, "uvu printed its summary");
  const afterSummary = run.stderr;
  assert.match(afterSummary, /2 tests? failed/);
  const first = afterSummary.indexOf("first.fixture.ts\n");
  const third = afterSummary.indexOf("third.fixture.ts\n");
  assert.ok(first >= 0 && third > first, afterSummary);
  assert.match(afterSummary, /FAIL\s+group one\s+"compares numbers"\n\s+one is not two/);
  assert.match(afterSummary, /FAIL\s+"compares strings"/);
  assert.match(afterSummary, /- 'right'/);
  assert.match(afterSummary, /first\.fixture\.ts:8/, "the stack names the failing line");
  assert.not.match(afterSummary, /passing test/);
});

test("a test process that stays alive after its summary is killed, and the run fails saying why", () => {
  const run = spawnSync(
    process.execPath,
    ["--import", "tsx", "scripts/test.ts", "test/fixtures/uvu-lingering", "\\.fixture\\.ts$"],
    { encoding: "utf8", timeout: 60_000, env: { ...process.env, VIGIE_TEST_EXIT_GRACE_MS: "300" } },
  );
  assert.is(run.status, 1, run.stderr);
  assert.match(stripColour(run.stdout), /Passed:\s+1/);
  assert.match(
    run.stderr,
    /still alive 300 ms after uvu's summary: a test left a server, a child process or a timer open/,
  );
});

test("failureReport is empty for a run without failures", () => {
  const output = "unit/a.test.ts\n• • •   (3 / 3)\n\n  Total:     3\n  Passed:    3\n  Skipped:   0\n";
  assert.is(failureReport(output), "");
});

test("failureReport ends a failure at the next file, and keeps the file it belongs to", () => {
  const output = [
    "\x1b[1mintegration/x.test.ts\x1b[22m",
    "• ✘   (1 / 2)",
    "",
    '  \x1b[41m FAIL \x1b[49m "broken"',
    "    expected 1",
    "",
    "",
    "unit/y.test.ts",
    "• •   (2 / 2)",
    "",
    "  Total:     4",
  ].join("\n");
  assert.is(failureReport(output), 'integration/x.test.ts\n   FAIL  "broken"\n    expected 1');
});

test("failureReport cuts a very long report", () => {
  const diff = Array.from({ length: 100 }, (_, i) => `    line ${i}`);
  const report = failureReport(["unit/z.test.ts", '  FAIL  "huge"', ...diff, "", "  Total:     1"].join("\n"));
  const lines = report.split("\n");
  assert.is(lines.length, 42);
  assert.is(lines[1], '  FAIL  "huge"');
  assert.is(lines.at(-1), "    … 61 more lines above, in the run");
});

test.run();
