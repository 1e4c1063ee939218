// The agent as a user runs it: a real `vigie agent --dev` process with a config, a real application process that
// receives SIGHUP, SIGTERM for a clean stop, and exec mode where the agent's exit code is the application's.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { freePort, waitFor } from "../helpers/ports.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const cli = join(root, "dist/cli.js");

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(command: string, args: string[], cwd: string): Running {
  const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function vigie(...args: string[]): Promise<{ code: number | null; output: string }> {
  const running = run(process.execPath, [cli, ...args], root);
  const code = await running.exited;
  return { code, output: running.output() };
}

/** Starts `vigie agent --dev` on free loopback ports in `dir`, with extra flags; returns it and its client URL. */
async function startDevAgent(dir: string, ...flags: string[]): Promise<{ agent: Running; endpoint: string }> {
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const agent = run(
    process.execPath,
    [cli, "agent", "--dev", "--listen-client", endpoint, "--listen-peer", peer, ...flags],
    dir,
  );
  return { agent, endpoint };
}

async function within<T>(what: string, promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const lifecycle = suite<{ dir: string; agents: Running[]; apps: Running[] }>("agent lifecycle", {
  dir: "",
  agents: [],
  apps: [],
});

lifecycle.before.each(async (context) => {
  context.dir = await mkdtemp(join(tmpdir(), "vigie-agent-"));
  context.agents = [];
  context.apps = [];
});

lifecycle.after.each(async (context) => {
  for (const process of [...context.agents, ...context.apps]) {
    if (process.child.exitCode === null && process.child.signalCode === null) process.child.kill("SIGKILL");
    await process.exited;
  }
  await rm(context.dir, { recursive: true, force: true });
});

/** A tiny application: writes its pid file, counts SIGHUPs in a file, exits 0 on SIGTERM. */
const APP_SOURCE = `
const fs = require("node:fs");
const [pidfile, hups] = process.argv.slice(2);
let count = 0;
process.on("SIGHUP", () => { count++; fs.writeFileSync(hups, String(count)); });
process.on("SIGTERM", () => process.exit(0));
fs.writeFileSync(pidfile, String(process.pid));
setInterval(() => {}, 1000);
`;

lifecycle("a put rewrites the file, the app gets SIGHUP, SIGTERM stops the agent cleanly", async (context) => {
  const { dir } = context;
  await writeFile(join(dir, "app.cjs"), APP_SOURCE);
  await writeFile(join(dir, "greeting.hbs"), 'greeting = {{key "/app/greeting"}}\nrevision = {{@revision}}\n');
  await writeFile(
    join(dir, "vigie.yaml"),
    [
      "templates:",
      "  - source: greeting.hbs",
      "    destination: greeting.conf",
      "    reload: { signal: SIGHUP, pidfile: app.pid }",
    ].join("\n"),
  );
  const app = run(process.execPath, [join(dir, "app.cjs"), join(dir, "app.pid"), join(dir, "hups")], dir);
  context.apps.push(app);
  await waitFor("the app's pidfile", async () => existsSync(join(dir, "app.pid")));

  const { agent, endpoint } = await startDevAgent(dir, "--config", join(dir, "vigie.yaml"), "--log-level", "info");
  context.agents.push(agent);
  await waitFor(
    "agent health",
    async () => {
      const response = await fetch(`${endpoint}/health`);
      return response.ok && ((await response.json()) as { health: string }).health === "true";
    },
    15_000,
  );
  // The template reads a key that does not exist yet: nothing is written from missing data.
  assert.not.ok(existsSync(join(dir, "greeting.conf")), "no file before the key exists");

  const put = await vigie("put", "/app/greeting", "bonjour", "--endpoints", endpoint);
  assert.is(put.code, 0, put.output);
  const rendered = await waitFor("the rendered file", async () => {
    const text = await readFile(join(dir, "greeting.conf"), "utf8").catch(() => "");
    return text.includes("bonjour") ? text : undefined;
  });
  assert.match(rendered, /^greeting = bonjour\nrevision = \d+\n$/);
  // The app rewrites the file in place: an empty read is one caught mid-write.
  const hupCount = async () => (await readFile(join(dir, "hups"), "utf8").catch(() => "")) || undefined;
  assert.is(await waitFor("SIGHUP", hupCount), "1");

  await vigie("put", "/app/greeting", "salut", "--endpoints", endpoint);
  await waitFor("the second render", async () =>
    (await readFile(join(dir, "greeting.conf"), "utf8")).includes("salut"),
  );
  assert.is(await waitFor("second SIGHUP", async () => ((await hupCount()) === "2" ? "2" : undefined)), "2");

  agent.child.kill("SIGTERM");
  assert.is(await within("agent stop", agent.exited, 10_000), 0, agent.output());
  assert.match(agent.output(), "stopping: deregistering services first");
  const dataDir = /"dataDir":"([^"]+)"/.exec(agent.output())?.[1];
  assert.ok(dataDir, "the agent logs its data dir");
  assert.not.ok(existsSync(dataDir!), "--dev removes its temporary data dir on exit");
  assert.is(app.child.exitCode, null, "the application keeps running after the agent stops");
});

lifecycle("exec mode: the agent supervises the app and exits with its exit code", async (context) => {
  const { dir } = context;
  await writeFile(join(dir, "app.cjs"), "setTimeout(() => process.exit(7), 300);\n");
  await writeFile(join(dir, "t.hbs"), 'x = {{keyOrDefault "/x" "none"}}\n');
  await writeFile(
    join(dir, "vigie.yaml"),
    [
      "templates:",
      "  - source: t.hbs",
      "    destination: t.conf",
      `exec: { command: [${JSON.stringify(process.execPath)}, "app.cjs"], restart: false }`,
    ].join("\n"),
  );
  const { agent } = await startDevAgent(dir, "--config", join(dir, "vigie.yaml"));
  context.agents.push(agent);
  assert.is(await within("agent exit", agent.exited, 15_000), 7, agent.output());
  assert.is(await readFile(join(dir, "t.conf"), "utf8"), "x = none\n");
});

lifecycle("no config at all: a bare single-node store that starts and stops on SIGTERM", async (context) => {
  const dataDir = join(context.dir, "data");
  const { agent, endpoint } = await startDevAgent(context.dir, "--data-dir", dataDir);
  context.agents.push(agent);
  await waitFor("agent running", async () => agent.output().includes('"msg":"agent running"'), 15_000);
  assert.is((await vigie("put", "k", "v", "--endpoints", endpoint)).code, 0);
  agent.child.kill("SIGTERM");
  assert.is(await within("agent stop", agent.exited, 10_000), 0, agent.output());
  assert.ok(existsSync(dataDir), "--dev with --data-dir keeps the data");
});

lifecycle("a config error stops the agent before it listens", async (context) => {
  await writeFile(join(context.dir, "vigie.yaml"), "templates:\n  - source: nope.hbs\n    destination: x\n");
  const result = await vigie("agent", "--dev", "--config", join(context.dir, "vigie.yaml"));
  assert.is(result.code, 3);
  assert.is(
    result.output,
    `vigie: ${join(context.dir, "vigie.yaml")}:2:13: templates[0].source: template file not found: ${join(context.dir, "nope.hbs")}\n`,
  );
});

lifecycle.run();
