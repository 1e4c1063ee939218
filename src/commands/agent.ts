// `vigie agent`: the long-running sidecar. It validates the whole config first, then starts the embedded replica
// (or connects to --store-endpoints), the sidecar (templates, reloads) and the service registrations.
import { loadConfig } from "../config/load.js";
import { NotAvailableError } from "../errors.js";
import type { AgentFlags } from "./options.js";

/** Flags in the config's snake_case names; flags given on the command line win over the file. */
export function overridesFromFlags(flags: AgentFlags) {
  return {
    name: flags.name,
    data_dir: flags.dataDir,
    listen_client: flags.listenClient,
    listen_peer: flags.listenPeer,
    initial_cluster: flags.initialCluster,
    join: flags.join,
    voters: flags.voters,
    store_endpoints: flags.storeEndpoints,
    dev: flags.dev,
    log_level: flags.logLevel,
  };
}

export async function runAgent(flags: AgentFlags): Promise<number> {
  await loadConfig(flags.config, overridesFromFlags(flags));
  throw new NotAvailableError("vigie agent");
}
