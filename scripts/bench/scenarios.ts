// Benchmark "scenarios": the delays of the two headline scenarios, with real agents and programs on loopback.
//   1. scale-out: a new backend's first passing health check (its agent's log) → haproxy.cfg listing it
//      (an agent renders it, checks it with `haproxy -c` and reloads haproxy). Target p99 ≤ 100 ms.
//   2. failover: put /db/sql_master → every one of N=10 agents (3 voters + 7 learners) has made its PHP app reload
//      (the app prints a line per reload). Target p99 ≤ 50 ms.
//   3. the same with the Raft leader killed (-9) just before the put (which retries until acknowledged); measured
//      from the kill to every surviving agent's app reloaded. Target ≤ 1 s.
import { watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { StoreClient } from "../../src/store/client.js";
import { freePort, waitFor } from "../../test/helpers/ports.js";
import { findExecutable } from "../../test/helpers/require-tool.js";
import {
  embeddedTopology,
  etcdTopology,
  haproxyReload,
  type Managed,
  putAcknowledged,
  Scene,
  type StoreTopology,
  TEMPLATES_DIR,
} from "../../test/integration/scenario-kit.js";
import type { Benchmark } from "../bench.js";

/** Writes through an election are retried every 10 ms, so the retry granularity barely adds to measured delays. */
const BENCH_RETRY = { retryMs: 10 };

const AGENTS = 10;
const VOTERS = 3;

interface Row {
  measure: string;
  runs: number;
  "p50 ms": string;
  "p99 ms": string;
  "max ms": string;
  target: string;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function row(measure: string, samples: number[], target: string): Row {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    measure,
    runs: sorted.length,
    "p50 ms": percentile(sorted, 50).toFixed(1),
    "p99 ms": percentile(sorted, 99).toFixed(1),
    "max ms": (sorted.at(-1) ?? Number.NaN).toFixed(1),
    target,
  };
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable with pino's `time` (Date.now()). */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

async function leaderName(client: StoreClient): Promise<string> {
  return await waitFor("a leader", async () => {
    const status = await client.status();
    if (status.leader === "0") return undefined;
    return (await client.memberList()).members.find((member) => member.id === status.leader)?.name;
  });
}

interface ScaleOutSamples {
  /** First passing check → haproxy.cfg lists the backend (the headline number). */
  listed: number[];
  /** First passing check → the agent's put acknowledged ("registered" in its log): the store's share. */
  registered: number[];
  /** First passing check → the same template rendered without `haproxy -c` (the check's share is the rest). */
  rendered: number[];
}

async function scaleOut(
  scene: Scene,
  topology: StoreTopology,
  haproxy: string,
  runs: number,
): Promise<ScaleOutSamples> {
  const haproxyConfig = scene.path("lb", "haproxy.cfg");
  const pidfile = scene.path("lb", "haproxy.pid");
  const bind = `127.0.0.1:${await freePort()}`;
  scene.writeFile(
    "lb/haproxy.cfg",
    `defaults\n  mode http\n  timeout connect 5s\n  timeout client 5s\n  timeout server 5s\nfrontend f\n  bind ${bind}\n`,
  );
  await scene.startHaproxy(haproxyConfig, pidfile, haproxy);
  let haproxyReloads = 0;
  scene.startAgent(
    "lb-agent",
    {
      templates: [
        // The same template without check or reload, rendered first in each batch: what the sidecar alone costs.
        {
          name: "unchecked",
          source: `${TEMPLATES_DIR}/haproxy.cfg.hbs`,
          destination: scene.path("lb", "unchecked.cfg"),
        },
        {
          source: `${TEMPLATES_DIR}/haproxy.cfg.hbs`,
          destination: haproxyConfig,
          check: [haproxy, "-c", "-q", "-f", "{{src}}"],
          reload: haproxyReload(pidfile),
        },
      ],
    },
    ["--name", "lb-agent", "--store-endpoints", topology.endpoints.join(",")],
    {
      env: { VIGIE_HAPROXY_BIND: bind, VIGIE_SERVICE: "web" },
      onLine(line) {
        if (line.includes('"msg":"application reloaded"')) haproxyReloads++;
      },
    },
  );
  // One agent registers every new backend: each run starts one more backend, whose check then passes. The checks run
  // every second, as in examples/scale-out/web-agent.yaml: the clock starts at the first passing check, so the
  // interval is not part of the sample, but checking 40 instances every 50 ms (one new HTTP connection each, most
  // to live node backends) kept ~0.7 of this 2-core machine busy and slowed every process measured.
  const ports: number[] = [];
  for (let i = 0; i < runs; i++) ports.push(await freePort());
  const passingAt = new Map<string, number>();
  const registeredAt = new Map<string, number>();
  scene.startAgent(
    "web-agent",
    {
      services: ports.map((port, i) => ({
        name: "web",
        id: `web-${i}`,
        address: `127.0.0.1:${port}`,
        check: { http: `http://127.0.0.1:${port}/health`, interval: "1s", timeout: "500ms" },
        ttl: "30s",
      })),
    },
    ["--name", "web-agent", "--store-endpoints", topology.endpoints.join(",")],
    {
      onLine(line) {
        const passing = line.includes('"health is now passing"');
        if (!passing && !line.includes('"msg":"registered"')) return;
        const entry = JSON.parse(line) as { id: string; time: number };
        (passing ? passingAt : registeredAt).set(entry.id, entry.time);
      },
    },
  );
  // Measured on a running system, not during the web agent's own start (a lease grant and a "critical" entry for
  // every instance, whose backend does not run yet): the first run starts once every instance is in the store.
  const probe = new StoreClient({ endpoints: topology.endpoints });
  try {
    await waitFor(
      "every instance announced as critical",
      async () => (await probe.range("/services/web/", { prefix: true, countOnly: true })).count === runs,
      30_000,
    );
  } finally {
    await probe.close();
  }
  await waitFor("haproxy reloaded with the first rendered config", async () => haproxyReloads >= 1, 15_000);
  const listedAt = new Map<string, number>();
  const renderedAt = new Map<string, number>();
  const watcher = watch(scene.path("lb"), () => {
    const seenAt = nowMs();
    for (const [file, seen] of [
      [haproxyConfig, listedAt],
      [scene.path("lb", "unchecked.cfg"), renderedAt],
    ] as const) {
      void readFile(file, "utf8")
        .then((text) => {
          for (const match of text.matchAll(/server (web-\d+) /g))
            if (!seen.has(match[1]!)) seen.set(match[1]!, seenAt);
        })
        .catch(() => undefined);
    }
  });
  const samples: ScaleOutSamples = { listed: [], registered: [], rendered: [] };
  try {
    for (let i = 0; i < runs; i++) {
      const reloadsBefore = haproxyReloads;
      await scene.startBackend(`web-${i}`, ports[i]!);
      const id = `web-${i}`;
      await waitFor(
        `${id} in haproxy.cfg`,
        async () => listedAt.has(id) && passingAt.has(id) && registeredAt.has(id) && renderedAt.has(id),
        15_000,
      );
      samples.listed.push(listedAt.get(id)! - passingAt.get(id)!);
      samples.registered.push(registeredAt.get(id)! - passingAt.get(id)!);
      samples.rendered.push(renderedAt.get(id)! - passingAt.get(id)!);
      // Each run on its own: the next backend starts once haproxy has been reloaded for this one.
      await waitFor(`haproxy reloaded for ${id}`, async () => haproxyReloads >= reloadsBefore + 1, 15_000);
    }
  } finally {
    watcher.close();
  }
  return samples;
}

interface Fleet {
  agents: Map<string, Managed>;
  restart(name: string): Managed;
  /** The master each app last reported reloading with. */
  reloads: Map<string, string>;
  /** When (nowMs) the bench read each app's last "reloaded" line: the clock stops at that line, not at a poll. */
  reloadedAt: Map<string, number>;
  /** When (the agent's log time) each agent last wrote db.php, and last signalled its app. */
  writtenAt: Map<string, number>;
  signalledAt: Map<string, number>;
}

async function startFleet(scene: Scene, topology: StoreTopology, php: string): Promise<Fleet> {
  const names = Array.from({ length: AGENTS }, (_, i) => `a${i + 1}`);
  const agents = new Map<string, Managed>();
  const args = new Map<string, string[]>();
  const writtenAt = new Map<string, number>();
  const signalledAt = new Map<string, number>();
  const start = (name: string) =>
    scene.startAgent(name, config(name), args.get(name), {
      onLine(line) {
        const written = line.includes('"msg":"file written"');
        if (!written && !line.includes('"msg":"application reloaded"')) return;
        const { time } = JSON.parse(line) as { time: number };
        (written ? writtenAt : signalledAt).set(name, time);
      },
    });
  const config = (name: string) => ({
    templates: [
      {
        source: `${TEMPLATES_DIR}/db.php.hbs`,
        destination: scene.path(name, "app", "db.php"),
        reload: { signal: "SIGHUP", pidfile: scene.path(name, "app", "app.pid"), process: "app.php" },
      },
    ],
  });
  for (const name of names) scene.mkdir(name, "app");
  for (const name of names.slice(0, VOTERS)) args.set(name, topology.founderArgs(name));
  for (const name of names.slice(0, VOTERS)) agents.set(name, start(name));
  const client = new StoreClient({ endpoints: topology.endpoints });
  await putAcknowledged(client, "/db/user", "app", BENCH_RETRY);
  await putAcknowledged(client, "/db/password", "secret", BENCH_RETRY);
  await putAcknowledged(client, "/db/sql_master", "10.0.0.0", BENCH_RETRY);
  await client.close();
  for (const name of names.slice(VOTERS)) {
    // One learner at a time: each join is a membership change, and the cluster takes them one by one.
    args.set(name, await topology.joinerArgs(name));
    agents.set(name, start(name));
    const dbPhp = scene.path(name, "app", "db.php");
    await waitFor(
      `${name} joined and rendered`,
      async () => (await readFile(dbPhp, "utf8")).includes("10.0.0.0"),
      60_000,
    );
  }
  const reloads = new Map<string, string>();
  const reloadedAt = new Map<string, number>();
  for (const name of names) {
    const dbPhp = scene.path(name, "app", "db.php");
    await waitFor(`${name} db.php`, async () => (await readFile(dbPhp, "utf8")).includes("10.0.0.0"), 60_000);
    const app = await scene.startPhpApp(name, await freePort(), dbPhp, scene.path(name, "app", "app.pid"), php);
    let partial = "";
    app.child.stdout?.on("data", (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const match = /^reloaded .*"host":"([^"]+)"/.exec(line);
        if (match) {
          reloads.set(name, match[1]!);
          reloadedAt.set(name, nowMs());
        }
      }
    });
  }
  return {
    agents,
    reloads,
    reloadedAt,
    writtenAt,
    signalledAt,
    restart(name) {
      const agent = start(name);
      agents.set(name, agent);
      return agent;
    },
  };
}

interface FailoverSamples {
  /** put → every app reloaded (the headline number). */
  reloaded: number[];
  /** put → acknowledged by the store: its share. */
  acknowledged: number[];
  /** put → the last agent wrote its db.php (store delivery, watch, render, write). */
  written: number[];
  /** put → the last agent signalled its app (the rest, to the app's line, is PHP's reload and its output). */
  signalled: number[];
}

async function failover(fleet: Fleet, topology: StoreTopology, runs: number): Promise<FailoverSamples> {
  const client = new StoreClient({ endpoints: topology.endpoints });
  const samples: FailoverSamples = { reloaded: [], acknowledged: [], written: [], signalled: [] };
  const names = [...fleet.agents.keys()];
  try {
    for (let i = 1; i <= runs; i++) {
      const master = `10.0.1.${i}`;
      const startedAt = nowMs();
      await client.put("/db/sql_master", master);
      samples.acknowledged.push(nowMs() - startedAt);
      await waitFor(
        `all ${AGENTS} apps on ${master}`,
        async () => names.every((name) => fleet.reloads.get(name) === master),
        15_000,
      );
      // The apps' lines are timed as they arrive, so polling adds nothing to the sample.
      samples.reloaded.push(Math.max(...names.map((name) => fleet.reloadedAt.get(name)!)) - startedAt);
      // The agents' log lines can trail their apps' lines by a moment: wait for this run's before reading them.
      const since = Math.floor(startedAt);
      await waitFor(
        `all ${AGENTS} agents logged the reload of ${master}`,
        async () => names.every((name) => (fleet.signalledAt.get(name) ?? 0) >= since),
        15_000,
      );
      samples.written.push(Math.max(...names.map((name) => fleet.writtenAt.get(name)!)) - startedAt);
      samples.signalled.push(Math.max(...names.map((name) => fleet.signalledAt.get(name)!)) - startedAt);
    }
  } finally {
    await client.close();
  }
  return samples;
}

async function failoverWithLeaderKill(fleet: Fleet, topology: StoreTopology, runs: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 1; i <= runs; i++) {
    const probe = new StoreClient({ endpoints: topology.endpoints, connectTimeoutMs: 300, requestTimeoutMs: 1_000 });
    const victim = await leaderName(probe);
    await probe.close();
    const survivors = [...fleet.agents.keys()].filter((name) => name !== victim);
    const survivorClient = new StoreClient({
      endpoints: topology.endpoints.filter((url) => url !== topology.clientUrlOf(victim)),
      connectTimeoutMs: 300,
      requestTimeoutMs: 1_000,
    });
    const master = `10.0.2.${i}`;
    const startedAt = nowMs();
    await fleet.agents.get(victim)!.stop("SIGKILL");
    await putAcknowledged(survivorClient, "/db/sql_master", master, BENCH_RETRY);
    await waitFor(
      `surviving apps on ${master}`,
      async () => survivors.every((name) => fleet.reloads.get(name) === master),
      15_000,
    );
    samples.push(Math.max(...survivors.map((name) => fleet.reloadedAt.get(name)!)) - startedAt);
    await survivorClient.close();
    // Bring the victim back and let it catch up before the next run.
    fleet.restart(victim);
    await waitFor(`${victim} caught up`, async () => fleet.reloads.get(victim) === master, 30_000);
  }
  return samples;
}

/** Every measurement on one store: the embedded 3-voter cluster (+ learners), or one etcd with client-role agents. */
async function measure(kind: StoreTopology["kind"], haproxy: string, php: string, quick: boolean): Promise<Row[]> {
  const scene = new Scene(`bench-scenarios-${kind}`);
  let topology: StoreTopology | undefined;
  try {
    const founders = Array.from({ length: VOTERS }, (_, i) => `a${i + 1}`);
    topology = kind === "embedded" ? await embeddedTopology(scene, founders) : await etcdTopology();
    const fleet = await startFleet(scene, topology, php);
    const scale = await scaleOut(scene, topology, haproxy, quick ? 20 : 40);
    const change = await failover(fleet, topology, quick ? 20 : 100);
    const rows = [
      row(`[${kind}] new backend: first passing check → listed in haproxy.cfg`, scale.listed, "p99 ≤ 100 ms"),
      row(`[${kind}]   of which: first passing check → registered (put acknowledged)`, scale.registered, ""),
      row(`[${kind}]   of which: first passing check → rendered without the haproxy -c check`, scale.rendered, ""),
      row(`[${kind}] put /db/sql_master → all ${AGENTS} apps reloaded`, change.reloaded, "p99 ≤ 50 ms"),
      row(`[${kind}]   of which: put → acknowledged`, change.acknowledged, ""),
      row(`[${kind}]   of which: put → the last agent wrote db.php`, change.written, ""),
      row(`[${kind}]   of which: put → the last agent signalled its app`, change.signalled, ""),
    ];
    if (kind === "embedded") {
      const killed = await failoverWithLeaderKill(fleet, topology, quick ? 3 : 10);
      rows.push(row(`[${kind}] leader kill + put → all ${AGENTS - 1} surviving apps reloaded`, killed, "≤ 1000 ms"));
    }
    return rows;
  } catch (error) {
    console.error(`scenarios (${kind}): ${(error as Error).message}\n${scene.describe().slice(-8_000)}`);
    throw error;
  } finally {
    await scene.cleanup();
    await topology?.close();
  }
}

const benchmark: Benchmark = {
  name: "scenarios",
  description: "scale-out (healthy check → haproxy.cfg) and DB failover (put → N=10 apps reloaded, with a leader kill)",
  async run(options) {
    const haproxy = findExecutable("haproxy");
    const php = findExecutable("php");
    if (!haproxy || !php) {
      console.log("scenarios: needs haproxy and php (apt-get install -y haproxy php-cli); skipped");
      return;
    }
    const rows: Row[] = [];
    const kinds: Array<StoreTopology["kind"]> = ["embedded"];
    if (options.etcd && findExecutable("etcd")) kinds.push("etcd");
    for (const kind of kinds) rows.push(...(await measure(kind, haproxy, php, options.quick)));
    console.table(rows);
  },
};

export default benchmark;
