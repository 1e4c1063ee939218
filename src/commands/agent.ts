// `vigie agent`: validates the whole config first, starts the agent, and runs until SIGTERM/SIGINT (or, in exec
// mode, until the supervised application exits for good, whose exit code becomes the agent's).
import { startAgent } from "../agent/agent.js";
import { loadConfig } from "../config/load.js";
import { EXIT_FAILURE, EXIT_OK } from "../errors.js";
import { createLogger } from "../log.js";
import { MetricsRegistry } from "../metrics.js";
import type { AgentFlags } from "./options.js";

/** Flags in the config's snake_case names; flags given on the command line win over the file. */
export function overridesFromFlags(flags: AgentFlags) {
  return {
    name: flags.name,
    data_dir: flags.dataDir,
    listen_client: flags.listenClient,
    listen_peer: flags.listenPeer,
    advertise_client: flags.advertiseClient,
    advertise_peer: flags.advertisePeer,
    initial_cluster: flags.initialCluster,
    join: flags.join,
    voters: flags.voters,
    store_endpoints: flags.storeEndpoints,
    dev: flags.dev,
    log_level: flags.logLevel,
  };
}

/** Any long period: the timer only holds the event loop open, its callback does nothing. */
const KEEP_RUNNING_INTERVAL_MS = 1 << 30;

type Ending =
  | { kind: "signal"; signal: NodeJS.Signals }
  | { kind: "app-exited"; code: number }
  | { kind: "fatal"; error: Error };

export async function runAgent(flags: AgentFlags): Promise<number> {
  const loaded = await loadConfig(flags.config, overridesFromFlags(flags), { agentRole: true });
  const logger = createLogger({ level: loaded.config.log_level });
  let endAgent: (ending: Ending) => void = () => {};
  const ended = new Promise<Ending>((resolve) => {
    endAgent = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => endAgent({ kind: "signal", signal });
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const agent = await startAgent({
    loaded,
    logger,
    metrics: new MetricsRegistry(),
    onFatal: (error) => endAgent({ kind: "fatal", error }),
  });
  // The agent runs until told to stop, even when nothing of its own keeps node's event loop busy: a client-role agent
  // with no --listen-client, templates or services has no socket or timer, and node used to exit at once (code 13,
  // "unsettled top-level await") without a word.
  // Set only once started: a failed start must still let the process exit with its error.
  const keepRunning = setInterval(() => {}, KEEP_RUNNING_INTERVAL_MS);
  agent.sidecar.execExit?.then((code) => endAgent({ kind: "app-exited", code }));
  logger.info({ endpoints: agent.endpoints, config: loaded.file }, "agent running");

  const ending = await ended;
  clearInterval(keepRunning);
  if (ending.kind === "fatal") logger.fatal({ err: ending.error }, "stopping: a part of the agent failed");
  else if (ending.kind === "signal") logger.info({ signal: ending.signal }, "stopping: deregistering services first");
  else logger.info({ code: ending.code }, "stopping: the application exited");
  const appExitCode = await agent.stop();
  logger.info("stopped");
  logger.flush();
  if (ending.kind === "fatal") return EXIT_FAILURE;
  if (ending.kind === "app-exited") return ending.code;
  return appExitCode ?? EXIT_OK;
}
