// stop() leaves nothing running: with the store unreachable, a failed resync must not keep retrying (and keep the
// process alive) after stop(), or `vigie agent` would not exit on SIGTERM while the store is down.
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { freePort } from "../../helpers/ports.js";

const src = resolve(import.meta.dirname, "../../../src");

test("after stop(), a failing resync stops retrying and the process exits on its own", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-sync-stop-"));
  try {
    const script = join(dir, "stop.mts");
    // A real client against a port nobody listens on: every read fails with ECONNREFUSED.
    await writeFile(
      script,
      `import { silentLogger } from ${JSON.stringify(join(src, "log.ts"))};
import { MetricsRegistry } from ${JSON.stringify(join(src, "metrics.ts"))};
import { StoreClient } from ${JSON.stringify(join(src, "store/client.ts"))};
import { StoreSync } from ${JSON.stringify(join(src, "watch/sync.ts"))};
class CountingClient extends StoreClient {
  calls = 0;
  async range(...args) { this.calls += 1; return await super.range(...args); }
}
const client = new CountingClient({ endpoints: ["http://127.0.0.1:${await freePort()}"], connectTimeoutMs: 200 });
const sync = new StoreSync(client, silentLogger(), new MetricsRegistry(), () => console.log("change after stop"));
// A mirror that has loaded something, as after a compaction: the resync (private; reached from a compacted
// watch) fails, and schedules its retry.
sync.mirror.loadKey("/a", undefined);
sync.mirror.revision = 5;
await sync.resyncSerialized("test");
sync.stop();
const callsAtStop = client.calls;
await new Promise((r) => setTimeout(r, 1000));
process.stdout.write("calls after stop " + String(client.calls - callsAtStop) + "\\n");
await client.close();
`,
    );
    const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = await new Promise<boolean>((resolveExit) => {
      const timer = setTimeout(() => resolveExit(false), 30_000);
      child.once("exit", () => {
        clearTimeout(timer);
        resolveExit(true);
      });
    });
    if (!exited) child.kill("SIGKILL");
    assert.ok(/calls after stop 0\n/.test(output), `no read after stop() (output: ${output})`);
    assert.ok(exited, `the process exits by itself after stop() (output: ${output})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
