// The stage for the end-to-end scenarios, the demo and the scenario benchmark: real processes (vigie agents, tiny
// HTTP backends, haproxy, nginx, PHP apps) on loopback, in one temp dir, all stopped and removed by cleanup() even
// when a test fails half-way. Nothing here is a fake: the same programs a user runs.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { StoreClient } from "../../src/store/client.js";
import { startEtcd } from "../helpers/etcd.js";
import { freePort, waitFor } from "../helpers/ports.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const VIGIE_CLI = join(REPO_ROOT, "dist/cli.js");
export const TEMPLATES_DIR = join(REPO_ROOT, "templates");
export const BACKEND_SCRIPT = join(REPO_ROOT, "examples/backend/backend.mjs");
export const PHP_APP_SCRIPT = join(REPO_ROOT, "examples/php-app/app.php");
export const HAPROXY_RELOAD_SCRIPT = join(REPO_ROOT, "examples/haproxy/reload.mjs");

/** The template `reload:` for a haproxy started by Scene.startHaproxy (through its master CLI, not SIGUSR2). */
export function haproxyReload(pidfile: string): { command: string[]; timeout: string } {
  return { command: [process.execPath, HAPROXY_RELOAD_SCRIPT, join(dirname(pidfile), "master.sock")], timeout: "10s" };
}

/** How much of a process's output is kept for failure messages. */
const OUTPUT_TAIL_CHARS = 16_000;
/**
 * How long a process gets to exit after SIGTERM before it is killed. An agent revokes its lease and hands over
 * leadership first, and tests check that it did: on a loaded machine that can take more than a few seconds.
 */
const STOP_GRACE_MS = 10_000;

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with each complete line of stdout or stderr (the demo narrates from the agents' JSON logs). */
  onLine?: (line: string) => void;
}

export interface Managed {
  name: string;
  child: ChildProcess;
  pid: number;
  /** The last OUTPUT_TAIL_CHARS of stdout + stderr. */
  output(): string;
  alive(): boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Every child and temp dir of every scene, so a crashing run still kills and removes them on its way out. */
const everyChild = new Set<ChildProcess>();
const everySceneDir = new Set<string>();
process.once("exit", () => {
  for (const child of everyChild) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const dir of everySceneDir) rmSync(dir, { recursive: true, force: true });
});

export class Scene {
  readonly dir: string;
  private readonly processes: Managed[] = [];

  constructor(label: string) {
    this.dir = mkdtempSync(join(tmpdir(), `vigie-${label}-`));
    everySceneDir.add(this.dir);
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Creates a directory (and its parents) in the scene; returns its path. */
  mkdir(...parts: string[]): string {
    const path = this.path(...parts);
    mkdirSync(path, { recursive: true });
    return path;
  }

  writeFile(relativePath: string, content: string): string {
    const path = this.path(relativePath);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    return path;
  }

  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): Managed {
    const child = spawn(command, args, {
      cwd: options.cwd ?? this.dir,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    everyChild.add(child);
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    if (options.onLine !== undefined) {
      const onLine = options.onLine;
      for (const stream of [child.stdout, child.stderr]) {
        let partial = "";
        stream?.on("data", (chunk: Buffer) => {
          const lines = (partial + chunk.toString("utf8")).split("\n");
          partial = (lines.pop() ?? "").slice(-OUTPUT_TAIL_CHARS);
          for (const line of lines) onLine(line);
        });
      }
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
      child.once("exit", (code, signal) => {
        everyChild.delete(child);
        resolveExit({ code, signal });
      });
      child.once("error", (error) => {
        keep(Buffer.from(`spawn failed: ${error.message}\n`));
        everyChild.delete(child);
        resolveExit({ code: -1, signal: null });
      });
    });
    const alive = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined;
    const managed: Managed = {
      name,
      child,
      pid: child.pid ?? -1,
      output: () => output,
      alive,
      exited,
      async stop(signal: NodeJS.Signals = "SIGTERM") {
        if (!alive()) return;
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      },
    };
    this.processes.push(managed);
    return managed;
  }

  /** A `vigie agent` with its config written as YAML next to it; `args` are extra flags (store role, names...). */
  startAgent(name: string, config: Record<string, unknown>, args: string[] = [], options: SpawnOptions = {}): Managed {
    const configPath = this.writeFile(`${name}/vigie.yaml`, stringify(config));
    // The bin itself, as an operator runs it (its shebang gives node the agent's heap flags).
    return this.spawn(`agent ${name}`, VIGIE_CLI, ["agent", "--config", configPath, ...args], {
      cwd: this.path(name),
      ...options,
    });
  }

  /** A tiny HTTP backend answering its name (examples/backend/backend.mjs). */
  async startBackend(name: string, port: number): Promise<Managed> {
    const backend = this.spawn(`backend ${name}`, process.execPath, [BACKEND_SCRIPT, name, String(port)]);
    await waitFor(`backend ${name} on ${port}`, async () => {
      assertAlive(backend);
      return (await httpText(`http://127.0.0.1:${port}/health`)) === "ok\n";
    });
    return backend;
  }

  /**
   * haproxy in master-worker mode with its master CLI on `<dir of pidfile>/master.sock`, which
   * examples/haproxy/reload.mjs uses to reload it (SIGUSR2 can be lost during a reload; see that file).
   */
  async startHaproxy(configPath: string, pidfile: string, haproxyBinary = "haproxy"): Promise<Managed> {
    const masterSocket = join(dirname(pidfile), "master.sock");
    const haproxy = this.spawn("haproxy", haproxyBinary, [
      "-W",
      "-db",
      "-S",
      masterSocket,
      "-f",
      configPath,
      "-p",
      pidfile,
    ]);
    await waitFor("haproxy pidfile", async () => {
      assertAlive(haproxy);
      return (await readFile(pidfile, "utf8").catch(() => "")).trim() !== "";
    });
    return haproxy;
  }

  /** The PHP app (examples/php-app/app.php): loads db.php at start and on SIGHUP; answers what it uses. */
  async startPhpApp(name: string, port: number, dbPhp: string, pidfile: string, phpBinary = "php"): Promise<Managed> {
    const app = this.spawn(`php ${name}`, phpBinary, [PHP_APP_SCRIPT, String(port), dbPhp, pidfile]);
    await waitFor(`php app ${name}`, async () => {
      assertAlive(app);
      return (await readFile(pidfile, "utf8").catch(() => "")).trim() !== "";
    });
    return app;
  }

  /** Output of every process, for a failure message. */
  describe(): string {
    return this.processes
      .map(
        (managed) =>
          `--- ${managed.name} (pid ${managed.pid}, ${managed.alive() ? "running" : "exited"})\n${managed.output()}`,
      )
      .join("\n");
  }

  /** Stops every process (agents first, so they deregister), then removes the temp dir. Safe to call twice. */
  async cleanup(): Promise<void> {
    const agentsFirst = [...this.processes].sort(
      (a, b) => Number(b.name.startsWith("agent")) - Number(a.name.startsWith("agent")),
    );
    for (const managed of agentsFirst) await managed.stop();
    this.processes.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
    everySceneDir.delete(this.dir);
  }
}

export function assertAlive(managed: Managed): void {
  if (!managed.alive()) throw new Error(`${managed.name} exited early:\n${managed.output()}`);
}

/** GET `url` and return the body, or undefined when it cannot be reached in `timeoutMs` or answers non-2xx. */
/** Retries a write through an election (no leader yet, or the endpoint just died) until the store acknowledges it. */
export async function putAcknowledged(
  client: StoreClient,
  key: string,
  value: string,
  options: { deadlineMs?: number; retryMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.deadlineMs ?? 15_000);
  for (;;) {
    try {
      await client.put(key, value);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, options.retryMs ?? 50));
    }
  }
}

export async function httpText(url: string, timeoutMs = 1_000): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { connection: "close" } });
    const text = await response.text();
    return response.ok ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Sends `count` requests through a load balancer and returns which backends answered (by their name). */
export async function backendsBehind(url: string, count: number): Promise<{ names: Set<string>; failures: number }> {
  const names = new Set<string>();
  let failures = 0;
  for (let i = 0; i < count; i++) {
    const text = await httpText(url);
    if (text === undefined) failures++;
    else names.add(text.trim());
  }
  return { names, failures };
}

/**
 * Where the agents' store lives. `embedded`: the agents are the store (founders bootstrap with --initial-cluster,
 * later ones join as learners with --join). `etcd`: one real etcd, every agent in client role (--store-endpoints).
 * The scenarios run the same steps on both: the sidecar only speaks the etcd v3 API.
 */
export interface StoreTopology {
  kind: "embedded" | "etcd";
  /** Client URLs of the store, for the test's own reads and writes. */
  endpoints: string[];
  /** Flags for a founding agent (one of the initial members). */
  founderArgs(name: string): string[];
  /** Flags for an agent that arrives later (a learner of the embedded cluster). */
  joinerArgs(name: string): Promise<string[]>;
  /** Client URL of a member by agent name (embedded only). */
  clientUrlOf(name: string): string | undefined;
  close(): Promise<void>;
}

export async function embeddedTopology(scene: Scene, founders: string[]): Promise<StoreTopology> {
  const clientUrls = new Map<string, string>();
  const peerUrls = new Map<string, string>();
  for (const name of founders) {
    clientUrls.set(name, `http://127.0.0.1:${await freePort()}`);
    peerUrls.set(name, `http://127.0.0.1:${await freePort()}`);
  }
  const initialCluster = founders.map((name) => `${name}=${peerUrls.get(name)}`).join(",");
  const memberArgs = (name: string) => [
    "--name",
    name,
    "--data-dir",
    scene.path(name, "data"),
    "--listen-client",
    clientUrls.get(name)!,
    "--listen-peer",
    peerUrls.get(name)!,
  ];
  return {
    kind: "embedded",
    endpoints: founders.map((name) => clientUrls.get(name)!),
    founderArgs: (name) => [
      ...memberArgs(name),
      "--initial-cluster",
      initialCluster,
      "--voters",
      String(founders.length),
    ],
    async joinerArgs(name) {
      clientUrls.set(name, `http://127.0.0.1:${await freePort()}`);
      peerUrls.set(name, `http://127.0.0.1:${await freePort()}`);
      return [...memberArgs(name), "--join", clientUrls.get(founders[0]!)!, "--voters", String(founders.length)];
    },
    clientUrlOf: (name) => clientUrls.get(name),
    async close() {},
  };
}

export async function etcdTopology(): Promise<StoreTopology> {
  const etcd = await startEtcd();
  return {
    kind: "etcd",
    endpoints: [etcd.clientUrl],
    founderArgs: (name) => ["--name", name, "--store-endpoints", etcd.clientUrl],
    joinerArgs: async (name) => ["--name", name, "--store-endpoints", etcd.clientUrl],
    clientUrlOf: () => undefined,
    close: () => etcd.stop(),
  };
}
