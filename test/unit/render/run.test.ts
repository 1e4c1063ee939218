// runArgv: the exit status is what counts, a timeout kills everything the command started, and a command that
// leaves a daemon behind (holding our pipes) is done when it exits.
import { readFileSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runArgv } from "../../../src/render/run.js";

/** True once pid is gone or a zombie (PID 1 in a container may be slow to reap orphans). */
function isDead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

async function waitDead(pid: number, waitMaxMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMaxMs;
  while (Date.now() < deadline) {
    if (isDead(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return isDead(pid);
}

test("a normal command: exit status and output", async () => {
  const ok = await runArgv(["sh", "-c", "echo one; echo two >&2"], { timeoutMs: 5_000 });
  assert.is(ok.ok, true);
  assert.is(ok.status, "exit 0");
  assert.match(ok.output, /one/);
  assert.match(ok.output, /two/);
  const failed = await runArgv(["sh", "-c", "echo broken; exit 4"], { timeoutMs: 5_000 });
  assert.equal([failed.ok, failed.exitCode, failed.summary], [false, 4, "exit 4: broken"]);
  const missing = await runArgv(["/nonexistent/program"], { timeoutMs: 5_000 });
  assert.is(missing.ok, false);
  assert.match(missing.summary, /cannot run .*ENOENT/);
});

test("a timeout kills the whole process group, grandchildren included, and returns at once", async () => {
  const startedAt = performance.now();
  // sh prints the pid of its child before waiting on it: that child must die with sh.
  const result = await runArgv(["sh", "-c", "sleep 30 & echo $!; wait"], { timeoutMs: 200 });
  const tookMs = performance.now() - startedAt;
  assert.is(result.timedOut, true);
  assert.is(result.ok, false);
  assert.match(result.summary, /^timed out after 200 ms/);
  assert.ok(tookMs < 2_000, `the timeout bounds the run (took ${Math.round(tookMs)} ms)`);
  const grandchild = Number(result.output.trim());
  assert.ok(grandchild > 0, `sh printed its child's pid (${result.output})`);
  assert.ok(await waitDead(grandchild, 2_000), `grandchild ${grandchild} was killed with the group`);

  const sequential = performance.now();
  const again = await runArgv(["sh", "-c", "sleep 3; true"], { timeoutMs: 200 });
  assert.is(again.timedOut, true);
  const againMs = performance.now() - sequential;
  assert.ok(
    againMs < 2_000,
    `a grandchild holding the pipes does not extend the timeout (took ${Math.round(againMs)} ms)`,
  );
});

test("a command that leaves a daemon behind succeeds when it exits, not when the daemon closes the pipes", async () => {
  const startedAt = performance.now();
  const result = await runArgv(["sh", "-c", "sleep 30 & echo $!; exit 0"], { timeoutMs: 2_000 });
  const tookMs = performance.now() - startedAt;
  const daemon = Number(result.output.trim());
  try {
    assert.equal([result.ok, result.timedOut, result.status], [true, false, "exit 0"]);
    assert.ok(tookMs < 1_500, `done when sh exited (took ${Math.round(tookMs)} ms)`);
    assert.ok(daemon > 0 && !isDead(daemon), "the daemon it started keeps running");
  } finally {
    if (daemon > 0) process.kill(daemon, "SIGKILL");
  }
});

test.run();
