// examples/haproxy/reload.mjs, the reload the scenarios and the examples use for haproxy: back-to-back reloads
// (what vigie does when changes arrive while haproxy is still reloading) must all take effect, the last one
// included. With SIGUSR2 to the master, haproxy 2.6 drops the ones that arrive mid-reload.
import { execFile } from "node:child_process";
import { connect } from "node:net";
import { promisify } from "node:util";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { freePort, waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import { HAPROXY_RELOAD_SCRIPT, Scene } from "./scenario-kit.js";

const run = promisify(execFile);
const reload = suite("haproxy reload through the master CLI");
const tools = requireTools("haproxy reload", "haproxy");

function config(port: number): string {
  return `defaults\n  mode http\n  timeout connect 5s\n  timeout client 5s\n  timeout server 5s\nfrontend f\n  bind 127.0.0.1:${port}\n`;
}

async function listening(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

reload("the last of several back-to-back reloads is always the config haproxy runs", async () => {
  if (!tools) return;
  const scene = new Scene("haproxy-reload");
  try {
    const configPath = scene.writeFile("lb/haproxy.cfg", config(await freePort()));
    const pidfile = scene.path("lb", "haproxy.pid");
    const haproxy = await scene.startHaproxy(configPath, pidfile, tools.haproxy);
    for (let round = 0; round < 4; round++) {
      let port = 0;
      for (let change = 0; change < 4; change++) {
        port = await freePort();
        scene.writeFile("lb/haproxy.cfg", config(port));
        await run(process.execPath, [HAPROXY_RELOAD_SCRIPT, scene.path("lb", "master.sock")], { timeout: 10_000 });
        await new Promise((resolve) => setTimeout(resolve, (round * 37 + change * 53) % 150));
      }
      await waitFor(`round ${round}: haproxy on its last port ${port}`, () => listening(port), 5_000);
    }
    assert.ok(haproxy.alive(), "reloaded, never restarted");
  } finally {
    await scene.cleanup();
  }
});

reload("a master socket that does not exist fails with a clear message", async () => {
  if (!tools) return;
  try {
    await run(process.execPath, [HAPROXY_RELOAD_SCRIPT, "/nonexistent/master.sock", "200"], { timeout: 5_000 });
    assert.unreachable("should have failed");
  } catch (error) {
    const failure = error as { code?: number; stderr?: string };
    assert.is(failure.code, 1);
    assert.match(failure.stderr ?? "", /haproxy reload through \/nonexistent\/master.sock: .*ENOENT/);
  }
});

reload.run();
