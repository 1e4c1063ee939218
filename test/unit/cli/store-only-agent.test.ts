// A store-only agent (no config file, so no templates, no app, no services) does not load the sidecar's modules,
// nor undici's index: they would cost memory for the agent's whole life. With a config file the sidecar runs (the file may gain
// templates later), which is also the control that the module check below can see the template engine at all.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { needsSidecar } from "../../../src/agent/agent.js";
import type { VigieConfig } from "../../../src/config/schema.js";
import { VIGIE_CLI } from "../../helpers/cluster.js";
import { freePort, waitFor } from "../../helpers/ports.js";

const TEMPLATE_ENGINE = "/node_modules/handlebars/";
const YAML_PARSER = "/node_modules/yaml/";
const UNDICI_INDEX = join(dirname(fileURLToPath(import.meta.url)), "../../../node_modules/undici/index.js");

/** Runs `vigie agent --dev [args]` until healthy; returns the CommonJS modules it loaded and its /health body. */
async function runAgent(dir: string, args: string[]): Promise<{ modules: string[]; health: unknown }> {
  const modulesFile = join(dir, `modules-${Math.random().toString(36).slice(2)}.txt`);
  const preload = join(dir, "list-modules.cjs");
  // Written aside and renamed into place: a read never sees a list cut short by the next write.
  await writeFile(
    preload,
    `const fs = require("node:fs");\n` +
      `setInterval(() => { fs.writeFileSync(${JSON.stringify(`${modulesFile}.tmp`)}, ` +
      `Object.keys(require.cache).join("\\n")); ` +
      `fs.renameSync(${JSON.stringify(`${modulesFile}.tmp`)}, ${JSON.stringify(modulesFile)}); }, 50).unref();\n`,
  );
  const clientUrl = `http://127.0.0.1:${await freePort()}`;
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const child = spawn(
    VIGIE_CLI,
    ["agent", "--dev", "--listen-client", clientUrl, "--listen-peer", peerUrl, "--log-level", "info", ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NODE_OPTIONS: `--require ${preload}` } },
  );
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    const health = await waitFor(
      "the agent's /health",
      async () => {
        if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}: ${stderr}`);
        const response = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
        return response.ok ? ((await response.json()) as unknown) : undefined;
      },
      15_000,
    );
    // /health answers before the sidecar has started: wait for the end of start-up, then for the preload's next
    // list (written every 50 ms).
    await waitFor("the agent's start-up", async () => `${stdout}${stderr}`.includes('"msg":"agent running"'), 15_000);
    const runningSeenMs = Date.now();
    await waitFor(
      "a module list written after start-up",
      async () => (await stat(modulesFile)).mtimeMs > runningSeenMs,
      15_000,
    );
    const modules = (await readFile(modulesFile, "utf8")).split("\n");
    child.kill("SIGTERM");
    assert.is(await exited, 0, stderr + stdout);
    return { modules, health };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

test("needsSidecar: a config file, templates or exec need one; flags alone do not", () => {
  const config = { templates: [], services: [] } as unknown as VigieConfig;
  const base = { config, baseDir: "/" };
  assert.is(needsSidecar({ ...base, file: undefined }), false);
  assert.is(needsSidecar({ ...base, file: "/etc/vigie.yaml" }), true);
  const withTemplate = { ...config, templates: [{}] } as unknown as VigieConfig;
  assert.is(needsSidecar({ config: withTemplate, baseDir: "/", file: undefined }), true);
  const withExec = { ...config, exec: { command: ["app"] } } as unknown as VigieConfig;
  assert.is(needsSidecar({ config: withExec, baseDir: "/", file: undefined }), true);
});

test("a store-only agent serves and is healthy without loading the template engine; with a config file it loads it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-store-only-"));
  try {
    const storeOnly = await runAgent(dir, []);
    assert.equal(storeOnly.health, { health: "true" });
    assert.ok(storeOnly.modules.length > 10, "the preload listed the agent's modules");
    assert.not.ok(
      storeOnly.modules.some((path) => path.includes(TEMPLATE_ENGINE)),
      "store-only agent loaded handlebars",
    );
    assert.not.ok(
      storeOnly.modules.some((path) => path.includes(YAML_PARSER)),
      "an agent without a config file loaded the YAML parser",
    );
    // HTTP clients use undici's Pool alone (src/store/undici-pool.ts), not its index (fetch, WebSocket, caches...).
    assert.ok(storeOnly.modules.some((path) => path.endsWith("/node_modules/undici/lib/dispatcher/pool.js")));
    assert.not.ok(storeOnly.modules.includes(UNDICI_INDEX), "the agent loaded undici's index");

    const configFile = join(dir, "vigie.yaml");
    await writeFile(configFile, "log_level: warn\n");
    const withConfig = await runAgent(dir, ["--config", configFile]);
    assert.equal(withConfig.health, { health: "true" });
    assert.ok(
      withConfig.modules.some((path) => path.includes(TEMPLATE_ENGINE)),
      "an agent with a config file runs the sidecar (and its template engine)",
    );
    assert.ok(
      withConfig.modules.some((path) => path.includes(YAML_PARSER)),
      "the config file was parsed as YAML",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
