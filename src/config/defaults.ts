// Config defaults and helpers that code outside config validation needs, kept apart from the zod schemas
// (src/config/schema.ts) so that importing them does not load zod: an agent started from flags alone never
// validates with zod (src/config/flags-only.ts), and zod held ~3 MB of its heap for its whole life.
import type { VigieConfig } from "./schema.js";

/** Where an embedded replica serves the client API unless told otherwise (etcd's default port). */
export const DEFAULT_LISTEN_CLIENT = "http://127.0.0.1:2379";

/** Where an embedded replica listens for its peers unless told otherwise (etcd's default port). */
export const DEFAULT_LISTEN_PEER = "http://127.0.0.1:2380";

/** How many voting members a cluster grows to unless told otherwise. */
export const DEFAULT_VOTERS = 3;

/** The most voting members a cluster may be asked to have. */
export const MAX_VOTERS = 7;

/** The client URLs the sidecar and CLI use for this config: the remote store, or the local replica. */
export function storeEndpointsOf(config: VigieConfig): string[] {
  return config.store_endpoints ?? [config.listen_client ?? DEFAULT_LISTEN_CLIENT];
}
