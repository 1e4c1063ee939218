// A single-node replica for the node tests: real WAL in `dataDir`, real peer server on loopback, fast ticks.
import { silentLogger } from "../../../src/log.js";
import { MetricsRegistry } from "../../../src/metrics.js";
import { type StartReplicaOptions, startReplica } from "../../../src/store/node.js";

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

export function startSolo(dataDir: string, metrics = new MetricsRegistry(), extra: Partial<StartReplicaOptions> = {}) {
  return startReplica({
    ...extra,
    name: "solo",
    dataDir,
    listenPeerUrl: "http://127.0.0.1:0",
    clientUrl: "http://127.0.0.1:2379",
    voters: 1,
    logger: silentLogger(),
    metrics,
    timing: { tickMs: 10 },
  });
}
