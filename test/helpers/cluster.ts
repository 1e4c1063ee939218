// Real `vigie agent` processes (the built dist/cli.js) forming a cluster on loopback, for the cluster integration
// tests and the cluster benchmark. Each agent gets free ports and its own data dir under one temp root; kill()
// sends a real signal (kill -9 included) and restart() brings the member back on the same data dir and ports.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitFor } from "./ports.js";

export const VIGIE_CLI = join(resolve(dirname(fileURLToPath(import.meta.url)), "../.."), "dist/cli.js");

const OUTPUT_TAIL_CHARS = 20_000;

/** Every agent started by this process, killed on exit even when a test crashes half-way. */
const everyChild = new Set<ChildProcess>();
function killEveryChild(): void {
  for (const child of everyChild) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}
process.once("exit", killEveryChild);
// A test run stopped by a signal (a timeout, Ctrl-C) must not leave agents behind: "exit" does not run then.
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    killEveryChild();
    process.exit(128 + (signal === "SIGTERM" ? 15 : 2));
  });
}

export interface AgentSpec {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  /** Extra flags: --initial-cluster ..., or --join URL, --voters N. */
  args: string[];
  env: Record<string, string>;
}

export class AgentProcess {
  private child: ChildProcess | undefined;
  private output = "";
  private exitPromise: Promise<void> = Promise.resolve();

  constructor(readonly spec: AgentSpec) {}

  get name(): string {
    return this.spec.name;
  }

  get clientUrl(): string {
    return this.spec.clientUrl;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The agent's last log lines (for failure messages). */
  logs(): string {
    return this.output;
  }

  /** Starts the process and waits until its client API answers /health. */
  async start(timeoutMs = 15_000): Promise<void> {
    const { spec } = this;
    // The bin is executed the way an operator runs it, so its shebang's node flags apply (and are what the
    // cluster benchmark measures). Extra node flags for the agents (e.g. --cpu-prof to profile them) come from the
    // test run's environment and reach node through NODE_OPTIONS.
    const extraNodeFlags = process.env.VIGIE_TEST_AGENT_NODE_ARGS ?? "";
    const nodeOptions = [process.env.NODE_OPTIONS ?? "", spec.env.NODE_OPTIONS ?? "", extraNodeFlags]
      .filter((options) => options.trim() !== "")
      .join(" ");
    const child = spawn(
      VIGIE_CLI,
      [
        "agent",
        "--name",
        spec.name,
        "--data-dir",
        spec.dataDir,
        "--listen-client",
        spec.clientUrl,
        "--listen-peer",
        spec.peerUrl,
        "--log-level",
        process.env.VIGIE_TEST_AGENT_LOG_LEVEL ?? "info",
        ...spec.args,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...spec.env, NODE_OPTIONS: nodeOptions } },
    );
    everyChild.add(child);
    this.child = child;
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.exitPromise = new Promise((r) => child.once("exit", () => r()));
    await waitFor(
      `agent ${spec.name} on ${spec.clientUrl}`,
      async () => {
        if (child.exitCode !== null)
          throw new Error(`agent ${spec.name} exited with ${child.exitCode}:\n${this.output}`);
        const response = await fetch(`${spec.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
        await response.body?.cancel();
        return response.status < 500;
      },
      timeoutMs,
    );
  }

  /** Sends `signal` and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.alive()) return;
    this.child?.kill(signal);
    await this.exitPromise;
  }

  /** Resolves with the exit code once the process ended on its own (e.g. a refused start). */
  async exitCode(): Promise<number | null> {
    await this.exitPromise;
    return this.child?.exitCode ?? null;
  }

  async stop(): Promise<void> {
    if (!this.alive()) return;
    this.child?.kill("SIGTERM");
    const gone = await Promise.race([this.exitPromise.then(() => true), sleep(3000).then(() => false)]);
    if (!gone) await this.kill("SIGKILL");
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A temp root plus the agents started in it; `cleanup()` kills them all and removes the files. */
export class ClusterFixture {
  readonly agents: AgentProcess[] = [];

  private constructor(
    readonly root: string,
    private readonly env: Record<string, string>,
  ) {}

  static async create(label: string, env: Record<string, string> = {}): Promise<ClusterFixture> {
    return new ClusterFixture(await mkdtemp(join(tmpdir(), `vigie-${label}-`)), env);
  }

  /** Defines (without starting) a founding cluster of `names`, with --initial-cluster naming all of them. */
  async defineStatic(names: string[], voters = names.length): Promise<AgentProcess[]> {
    const specs = await Promise.all(names.map((name) => this.spec(name)));
    const initial = specs.map((s) => `${s.name}=${s.peerUrl}`).join(",");
    const agents = specs.map(
      (s) => new AgentProcess({ ...s, args: ["--initial-cluster", initial, "--voters", String(voters)] }),
    );
    this.agents.push(...agents);
    return agents;
  }

  /** Starts a founding cluster and waits until every member serves. */
  async startStatic(names: string[], voters = names.length): Promise<AgentProcess[]> {
    const agents = await this.defineStatic(names, voters);
    await Promise.all(agents.map((a) => a.start()));
    return agents;
  }

  /** Defines a member that joins the cluster at `joinUrl` as a learner. */
  async defineJoiner(name: string, joinUrl: string, voters: number): Promise<AgentProcess> {
    const spec = await this.spec(name);
    const agent = new AgentProcess({ ...spec, args: ["--join", joinUrl, "--voters", String(voters)] });
    this.agents.push(agent);
    return agent;
  }

  private async spec(name: string): Promise<Omit<AgentSpec, "args">> {
    return {
      name,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
      dataDir: join(this.root, name),
      env: this.env,
    };
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.kill("SIGKILL")));
    await rm(this.root, { recursive: true, force: true });
  }
}

/** One member of a real etcd 3.4 cluster (Debian's /usr/bin/etcd), for side-by-side benchmarks. */
export class EtcdMember {
  private child: ChildProcess | undefined;
  private output = "";
  private exitPromise: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    private readonly args: string[],
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(binary: string): void {
    const child = spawn(binary, this.args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? "" },
    });
    everyChild.add(child);
    this.child = child;
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.exitPromise = new Promise((r) => child.once("exit", () => r()));
  }

  logs(): string {
    return this.output;
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (!this.alive()) return;
    this.child?.kill(signal);
    await this.exitPromise;
  }
}

/** Starts an etcd cluster of `size` members with etcd's default timing, and waits until it has a leader. */
export async function startEtcdCluster(binary: string, root: string, size: number): Promise<EtcdMember[]> {
  const specs = [];
  for (let i = 1; i <= size; i++) {
    specs.push({
      name: `etcd${i}`,
      clientUrl: `http://127.0.0.1:${await freePort()}`,
      peerUrl: `http://127.0.0.1:${await freePort()}`,
    });
  }
  const initial = specs.map((s) => `${s.name}=${s.peerUrl}`).join(",");
  const members = specs.map(
    (s) =>
      new EtcdMember(s.name, s.clientUrl, s.peerUrl, [
        "--name",
        s.name,
        "--data-dir",
        join(root, s.name),
        "--listen-client-urls",
        s.clientUrl,
        "--advertise-client-urls",
        s.clientUrl,
        "--listen-peer-urls",
        s.peerUrl,
        "--initial-advertise-peer-urls",
        s.peerUrl,
        "--initial-cluster",
        initial,
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        `bench-${process.pid}`,
        "--log-level",
        "error",
        "--logger",
        "zap",
      ]),
  );
  for (const member of members) member.start(binary);
  await Promise.all(
    members.map((m) =>
      waitFor(
        `etcd ${m.name} healthy`,
        async () => {
          if (!m.alive()) throw new Error(`etcd ${m.name} exited:\n${m.logs()}`);
          const response = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
          return ((await response.json()) as { health?: string }).health === "true";
        },
        20_000,
      ),
    ),
  );
  return members;
}
