// `npm start` runs `vigie agent --dev --config examples/quickstart.yaml`: the README promises that a put then shows
// up in examples/out/db.conf. This runs exactly that config (on free ports) so the promise stays true.
import { spawn } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { freePort, waitFor } from "../helpers/ports.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const cli = join(root, "dist/cli.js");
const output = join(root, "examples/out/db.conf");

test("the quickstart config renders db.conf and follows a put", async () => {
  await rm(join(root, "examples/out"), { recursive: true, force: true });
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  const agent = spawn(
    process.execPath,
    [
      cli,
      "agent",
      "--dev",
      "--config",
      "examples/quickstart.yaml",
      "--listen-client",
      endpoint,
      "--listen-peer",
      `http://127.0.0.1:${await freePort()}`,
    ],
    { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  agent.stderr.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => agent.once("exit", resolve));
  try {
    const first = await waitFor(
      "the first render",
      async () => readFile(output, "utf8").catch(() => undefined),
      15_000,
    );
    assert.match(first, "sql_master = 127.0.0.1\n");
    const put = spawn(process.execPath, [cli, "put", "/db/sql_master", "10.0.0.2", "--endpoints", endpoint]);
    assert.is(await new Promise((resolve) => put.once("exit", resolve)), 0);
    const second = await waitFor("the new master in db.conf", async () => {
      const text = await readFile(output, "utf8");
      return text.includes("10.0.0.2") ? text : undefined;
    });
    assert.match(second, /^# Rendered by vigie at store revision 2\. /);
    assert.match(second, "sql_master = 10.0.0.2\n");
    agent.kill("SIGTERM");
    assert.is(await exited, 0, log);
  } finally {
    if (agent.exitCode === null) agent.kill("SIGKILL");
    await rm(join(root, "examples/out"), { recursive: true, force: true });
  }
});

test.run();
