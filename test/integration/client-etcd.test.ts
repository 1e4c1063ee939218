// The sidecar's store client (StoreSync over StoreClient) against a real 3-member etcd 3.4 cluster, through the
// same failures as client-vigie.test.ts (dead first endpoint, kill -9 and restart of the watch's member, SIGSTOP of
// the next one while the store is compacted past the watcher, whose reconnect is then answered with
// compact_revision; a leader kill). The watcher must end with exactly the store's keys, once each, in order.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import { startEtcdCluster } from "../helpers/cluster.js";
import { waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";
import { runFailoverScenario } from "./client-kit.js";

const tools = requireTools("store client against an etcd cluster", "etcd");

const startedMs = Date.now();
function step(what: string): void {
  if (process.env.VIGIE_TEST_VERBOSE) console.log(`  +${Date.now() - startedMs} ms: ${what}`);
}

test("a watch on etcd followers sees every write once, in order, through kill -9, restart, SIGSTOP + compaction and a leader kill", async () => {
  if (!tools) return;
  const root = await mkdtemp(join(tmpdir(), "vigie-client-etcd-"));
  const etcds = await startEtcdCluster(tools.etcd!, root, 3).catch(async (error: unknown) => {
    await rm(root, { recursive: true, force: true });
    throw error;
  });
  try {
    const members = etcds.map((etcd) => ({
      name: etcd.name,
      clientUrl: etcd.clientUrl,
      get pid() {
        return etcd.pid;
      },
      kill: async (signal: "SIGKILL") => await etcd.kill(signal),
      restart: async () => {
        etcd.start(tools.etcd!);
        await waitFor(`${etcd.name} back`, async () => {
          const response = await fetch(`${etcd.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
          return ((await response.json()) as { health?: string }).health === "true";
        });
      },
    }));
    await runFailoverScenario(members, step);
  } finally {
    await Promise.all(etcds.map((etcd) => etcd.kill("SIGKILL")));
    await rm(root, { recursive: true, force: true });
  }
});

test.run();
