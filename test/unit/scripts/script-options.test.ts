// `npm run sim` and `npm run bench` with options they do not know: a usage line naming the option and exit 2, not a
// stack trace from node's argument parser; a misspelt benchmark name is refused instead of running nothing; --help
// prints the usage (and the benchmarks' names) and exits 0.
import { spawnSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";

function run(script: string, args: string[]) {
  const result = spawnSync(process.execPath, ["--import", "tsx", `scripts/${script}.ts`, ...args], {
    encoding: "utf8",
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("sim: an unknown option is named with the usage, exit 2", () => {
  const { status, stdout, stderr } = run("sim", ["--sed", "3"]);
  assert.is(status, 2, stderr);
  assert.match(stderr, /^sim: Unknown option '--sed'/);
  assert.match(stderr, /usage: npm run sim -- --seeds N/);
  assert.not.match(stderr, /at parseArgs|ERR_PARSE_ARGS/, "no stack trace");
  assert.is(stdout, "");
});

test("sim: --help prints the usage, exit 0", () => {
  const { status, stdout } = run("sim", ["--help"]);
  assert.is(status, 0);
  assert.match(stdout, /usage: npm run sim -- --seeds N/);
});

test("bench: an unknown option or benchmark name is refused with the usage, exit 2, before anything runs", () => {
  const option = run("bench", ["--onyl", "cluster"]);
  assert.is(option.status, 2, option.stderr);
  assert.match(option.stderr, /^bench: Unknown option '--onyl'/);
  assert.not.match(option.stderr, /at parseArgs|ERR_PARSE_ARGS/, "no stack trace");
  const name = run("bench", ["--only", "cluster,storag"]);
  assert.is(name.status, 2, name.stderr);
  assert.match(name.stderr, /no benchmark named storag \(there are: .*cluster.*storage/);
  assert.not.match(name.stdout, /^== /m, "a benchmark ran");
});

test("bench: --help lists the benchmarks, exit 0", () => {
  const { status, stdout } = run("bench", ["--help"]);
  assert.is(status, 0);
  assert.match(stdout, /usage: npm run bench/);
  for (const name of ["cluster", "raft-sim", "scenarios", "sidecar", "storage"]) {
    assert.match(stdout, new RegExp(`^  ${name}: `, "m"));
  }
});

test.run();
