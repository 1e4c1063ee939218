// Starts vigie's client API in this process in front of a real single-node replica (real WAL in a temp dir,
// real peer and client servers on loopback): what `vigie agent --dev` runs, without the process around it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../../src/log.js";
import { MetricsRegistry } from "../../../src/metrics.js";
import type { RunningReplica } from "../../../src/store/node.js";
import { startReplica } from "../../../src/store/node.js";
import { type ApiLimits, type ApiServer, startApiServer } from "../../../src/store/server/server.js";
import { freePort } from "../../helpers/ports.js";

export interface InProcessGateway {
  url: string;
  replica: RunningReplica;
  server: ApiServer;
  metrics: MetricsRegistry;
  stop(): Promise<void>;
}

export async function startInProcessGateway(limits: Partial<ApiLimits> = {}): Promise<InProcessGateway> {
  const dataDir = await mkdtemp(join(tmpdir(), "vigie-gateway-"));
  const metrics = new MetricsRegistry();
  // The member list advertises the client URL, so the port is chosen before the replica starts.
  const url = `http://127.0.0.1:${await freePort()}`;
  const replica = await startReplica({
    name: "gateway-test",
    dataDir,
    listenPeerUrl: "http://127.0.0.1:0",
    clientUrl: url,
    voters: 1,
    logger: silentLogger(),
    metrics,
    timing: { tickMs: 10 },
  });
  await replica.linearizableBarrier();
  const server = await startApiServer({ replica, listenUrl: url, logger: silentLogger(), metrics, limits });
  return {
    url: server.url,
    replica,
    server,
    metrics,
    stop: async () => {
      await server.close();
      await replica.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
