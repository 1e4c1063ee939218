// Composes a running agent from its parts, in the order data flows: the store (an embedded replica with its client
// API, or a remote vigie/etcd cluster), then the sidecar (templates, reloads, the supervised app) and the service
// registrations, both of which talk to the store only through the etcd v3 JSON API.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createNetServer } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_LISTEN_CLIENT } from "../config/defaults.js";
import type { LoadedConfig } from "../config/load.js";
import { listensEverywhere } from "../config/roles.js";
import { VigieError } from "../errors.js";
import type { Logger } from "../log.js";
import type { MetricsRegistry } from "../metrics.js";
import type { RunningServices } from "../services/index.js";
import type { Sidecar } from "../sidecar/sidecar.js";
import type { StoreClient } from "../store/client.js";
import type { RunningReplica } from "../store/node.js";
import { sendGetOnly, sendHealth, sendMetrics, sendNotFound } from "../store/server/plain-http.js";
import type { ApiServer } from "../store/server/server.js";
import { checkDataDir } from "./data-dir.js";
import { startIdleGc } from "./idle-gc.js";

export interface AgentOptions {
  loaded: LoadedConfig;
  logger: Logger;
  metrics: MetricsRegistry;
  /** Called when a part had to stop on its own (the replica's storage failed): the agent should exit. */
  onFatal: (error: Error) => void;
}

export interface Agent {
  /** The client URLs the sidecar uses (the local replica's, or --store-endpoints). */
  readonly endpoints: string[];
  readonly sidecar: Sidecar;
  /**
   * Stops in the order that protects users: deregister services first (load balancers drop this instance before it
   * goes away), then the sidecar and the supervised app, then the client API and the replica.
   * Resolves with the app's exit code in exec mode.
   */
  stop(): Promise<number | undefined>;
}

/** Health of the whole agent: the store as this agent sees it, plus the sidecar (e.g. store unreachable). */
type HealthProbe = () => { healthy: boolean; reason?: string | undefined };

function healthRoute(probes: HealthProbe[], sidecar: () => Sidecar | undefined) {
  return (_request: IncomingMessage, response: ServerResponse) => {
    const sidecarStatus = sidecar()?.status();
    const reasons: string[] = [];
    for (const probe of probes) {
      const result = probe();
      if (!result.healthy) reasons.push(result.reason ?? "unhealthy");
    }
    if (sidecarStatus && !sidecarStatus.healthy) reasons.push(sidecarStatus.reason ?? "sidecar unhealthy");
    sendHealth(response, reasons);
  };
}

function replicaHealth(replica: RunningReplica): HealthProbe {
  return () => {
    const status = replica.status();
    if (status.leader === 0) return { healthy: false, reason: "no leader" };
    if (status.errors.length > 0) return { healthy: false, reason: status.errors.join("; ") };
    return { healthy: true };
  };
}

interface StoreHandle {
  endpoints: string[];
  close(): Promise<void>;
}

/** Embedded replica + its client API on --listen-client. */
async function startEmbeddedStore(options: AgentOptions, sidecar: () => Sidecar | undefined): Promise<StoreHandle> {
  const { config } = options.loaded;
  const name = config.name ?? hostname();
  // --dev keeps its data in a temporary directory removed on exit, unless --data-dir says where to keep it.
  let devDir: string | undefined;
  if (config.dev && config.data_dir === undefined) devDir = await mkdtemp(join(tmpdir(), "vigie-dev-"));
  const dataDir = devDir ?? config.data_dir ?? `${name}.vigie`;
  const clientUrl = config.listen_client ?? DEFAULT_LISTEN_CLIENT;
  // No cluster flags: the replica founds a single-member cluster, like etcd started with no flags. Left undefined
  // here rather than spelled out, so that the replica can tell a restart with --initial-cluster from one without.
  const initialCluster = config.join === undefined ? config.initial_cluster : undefined;
  const urlsByFlag = { "--listen-client": clientUrl, "--listen-peer": config.listen_peer };
  try {
    await checkPortsFree(urlsByFlag);
  } catch (error) {
    if (devDir) await rm(devDir, { recursive: true, force: true });
    throw explainListenError(error, urlsByFlag);
  }
  if (devDir === undefined) {
    const label =
      config.data_dir === undefined
        ? `data dir ${dataDir} (the default, <name>.vigie in the current directory; choose one with --data-dir)`
        : `--data-dir ${config.data_dir}`;
    await checkDataDir(dataDir, label);
  }
  let replica: RunningReplica | undefined;
  try {
    // Loaded here, not at the top: a client-role agent (--store-endpoints) never loads the replica (Raft, WAL, MVCC,
    // peer transport, client API server): ~2 MB of RSS it would otherwise hold for its whole life.
    const [{ startReplica }, { startApiServer }] = await Promise.all([
      import("../store/node.js"),
      import("../store/server/server.js"),
    ]);
    if (config.advertise_client === undefined && listensEverywhere(clientUrl)) {
      // Refused for the peer URL (see roles.ts); the client URL is only shown (member list, `vigie status`), and a
      // single agent listening everywhere worked before --advertise-client existed.
      options.logger.warn(
        { listenClient: clientUrl },
        "--listen-client listens on every interface and is advertised as is: `vigie status` and `member list` on " +
          "other hosts cannot reach this member; give --advertise-client with an address they can",
      );
    }
    replica = await startReplica({
      name,
      dataDir,
      listenPeerUrl: config.listen_peer,
      ...(config.advertise_peer === undefined ? {} : { advertisePeerUrl: config.advertise_peer }),
      clientUrl: withoutTrailingSlash(config.advertise_client ?? clientUrl),
      initialCluster,
      join: config.join,
      voters: config.dev ? 1 : config.voters,
      logger: options.logger,
      metrics: options.metrics,
      onFatal: options.onFatal,
    });
    const running = replica;
    const api: ApiServer = await startApiServer({
      replica: running,
      listenUrl: clientUrl,
      logger: options.logger,
      metrics: options.metrics,
      extraRoutes: { "GET /health": healthRoute([replicaHealth(running)], sidecar) },
    });
    options.logger.info({ name, dataDir, client: api.url, peer: running.peerUrl }, "store ready");
    // Applied entries are the replica's work: a burst of them (a bulk load) ends with garbage worth collecting.
    // Requests count too, so that the collection's pause does not meet read-only traffic (ranges, health checks).
    const idleGc = startIdleGc({
      logger: options.logger,
      activity: () => running.status().raftAppliedIndex + api.requestsReceived(),
    });
    return {
      endpoints: [api.url],
      async close() {
        idleGc.stop();
        await api.close();
        await running.close();
        if (devDir) await rm(devDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await replica?.close();
    if (devDir) await rm(devDir, { recursive: true, force: true });
    throw explainListenError(error, urlsByFlag);
  }
}

/**
 * Binds each address for a moment before the replica starts: the replica settles its identity first (a joiner asks
 * the cluster to add it, and writes its data dir), so a port found busy only afterwards left an unstarted learner in
 * the cluster and a data dir bound to a peer URL it could not serve. Port 0 (any free port) cannot be busy.
 */
async function checkPortsFree(urlsByFlag: Record<string, string>): Promise<void> {
  for (const url of new Set(Object.values(urlsByFlag))) {
    const { port, hostname: host } = new URL(url);
    if (port === "0") continue;
    const probe = createNetServer();
    await new Promise<void>((resolve, reject) => {
      probe.once("error", reject);
      probe.listen(Number(port || 80), host.replace(/^\[|\]$/g, ""), () => probe.close(() => resolve()));
    });
  }
}

/** Turns "EADDRINUSE 127.0.0.1:2380" into an error that names the flag to change. */
function explainListenError(error: unknown, urlsByFlag: Record<string, string>): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== "EADDRINUSE" && code !== "EACCES" && code !== "EADDRNOTAVAIL") return error;
  const port = String((error as { port?: number }).port ?? "");
  const flag = Object.entries(urlsByFlag).find(([, url]) => new URL(url).port === port);
  const what = flag ? `${flag[0]} ${flag[1]}` : `port ${port}`;
  const reason =
    code === "EADDRINUSE"
      ? "the address is already in use"
      : code === "EACCES"
        ? "permission denied"
        : "no such local address";
  return new VigieError("VIGIE_ERR_LISTEN", `cannot listen on ${what}: ${reason}`, { cause: error });
}

/** Client role: no replica. /health and /metrics are served only when --listen-client was given. */
async function startRemoteStore(options: AgentOptions, sidecar: () => Sidecar | undefined): Promise<StoreHandle> {
  const { config } = options.loaded;
  const endpoints = config.store_endpoints ?? [];
  let server: Server | undefined;
  if (config.listen_client !== undefined) {
    const health = healthRoute([], sidecar);
    const metrics = options.metrics;
    const created = createServer((request, response) => {
      // Routed like the embedded replica's client API: by path (a query string does not matter), GET only.
      const path = URL.parse(request.url ?? "/", "http://localhost")?.pathname ?? "/";
      if (path === "/metrics") return sendMetrics(response, metrics.render());
      if (path !== "/health") return sendNotFound(response, path);
      return request.method === "GET" ? health(request, response) : sendGetOnly(response);
    });
    const url = new URL(config.listen_client);
    await new Promise<void>((resolve, reject) => {
      created.once("error", (error) => reject(explainListenError(error, { "--listen-client": config.listen_client! })));
      created.listen(Number(url.port || 80), url.hostname.replace(/^\[|\]$/g, ""), resolve);
    });
    server = created;
  }
  options.logger.info({ endpoints }, "using a remote store (client role)");
  return {
    endpoints,
    async close() {
      if (server) await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * The sidecar of an agent with no config file, no templates and no app to supervise: a store-only member (the
 * voters of a cluster often are). Nothing can give it templates later (there is no file to watch), so the template
 * engine, the file watcher and the reload machinery are not even loaded: they were several MB of every such agent.
 */
const STORE_ONLY_SIDECAR: Sidecar = {
  status: () => ({ healthy: true, revision: 0, templates: [] }),
  firstRender: Promise.resolve(),
  execExit: undefined,
  stop: async () => undefined,
};

/** Whether the agent has anything for a sidecar to do, now or after its config file changes. */
export function needsSidecar(loaded: LoadedConfig): boolean {
  const { config, file } = loaded;
  return file !== undefined || config.templates.length > 0 || config.exec !== undefined;
}

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const { config, file, baseDir } = options.loaded;
  let sidecar: Sidecar | undefined;
  const currentSidecar = () => sidecar;
  const store = config.store_endpoints
    ? await startRemoteStore(options, currentSidecar)
    : await startEmbeddedStore(options, currentSidecar);
  let services: RunningServices | undefined;
  let client: StoreClient | undefined;
  try {
    // Loaded on demand, like the services below: modules a role does not use cost memory for the agent's lifetime.
    if (needsSidecar(options.loaded)) {
      const { startSidecar } = await import("../sidecar/sidecar.js");
      sidecar = await startSidecar({
        config,
        configFile: file,
        baseDir,
        endpoints: store.endpoints,
        logger: options.logger,
        metrics: options.metrics,
        forwardSignals: false,
      });
    } else {
      sidecar = STORE_ONLY_SIDECAR;
    }
    if (config.services.length > 0) {
      const [{ startServices }, { StoreClient }] = await Promise.all([
        import("../services/index.js"),
        import("../store/client.js"),
      ]);
      client = new StoreClient({ endpoints: store.endpoints });
      services = startServices({ services: config.services, client, logger: options.logger, metrics: options.metrics });
    }
  } catch (error) {
    await sidecar?.stop();
    await store.close();
    throw error;
  }
  const runningSidecar = sidecar;
  let stopping: Promise<number | undefined> | undefined;
  return {
    endpoints: store.endpoints,
    sidecar: runningSidecar,
    stop() {
      stopping ??= (async () => {
        await services?.stop();
        await client?.close();
        const exitCode = await runningSidecar.stop();
        await store.close();
        return exitCode;
      })();
      return stopping;
    },
  };
}

/** `http://h:2379/` is published as `http://h:2379`, as clients and `member list` spell it. */
function withoutTrailingSlash(url: string): string {
  const parsed = new URL(url.trim());
  return `${parsed.protocol}//${parsed.host}`;
}
