// The agent's logger writes each line before the call returns: a process that blocks (or dies) right after
// logging has still told its operator why.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";

const LOG_MODULE = join(dirname(fileURLToPath(import.meta.url)), "../../../src/log.ts");

// Logs three lines, then blocks its event loop for 30 s (as a long fsync or a hung call would), then exits. (With
// asynchronous writes, the first line may leave through the thread pool; the next ones wait for the loop.)
const CHILD = `
import { createLogger } from ${JSON.stringify(LOG_MODULE)};
const logger = createLogger({ level: "info", pretty: false });
for (const step of [1, 2, 3]) logger.info({ step }, "about to block");
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30000);
`;

test("JSON log lines are on stderr when the call returns, even if the loop never turns again", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", CHILD], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const startedAt = Date.now();
  const lines = await new Promise<string[]>((resolve, reject) => {
    let buffered = "";
    child.stderr.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const complete = buffered.split("\n").slice(0, -1);
      if (complete.length >= 3) resolve(complete);
    });
    child.once("exit", () => reject(new Error(`exited before logging: ${buffered}`)));
  });
  const arrivedAfterMs = Date.now() - startedAt;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
  const records = lines.map((line) => JSON.parse(line) as { msg: string; step: number; pid: number });
  assert.equal(
    records.map((r) => r.step),
    [1, 2, 3],
  );
  for (const record of records) {
    assert.is(record.msg, "about to block");
    assert.is(record.pid, child.pid);
  }
  // Start-up (tsx, pino) takes a few seconds at most, even on a loaded machine; lines written only when the loop
  // turns would come after the block. (Killed as soon as they arrive, the child costs no more than its start-up.)
  assert.ok(arrivedAfterMs < 25_000, `the lines arrived ${arrivedAfterMs} ms after start, i.e. after the block`);
});

test.run();
