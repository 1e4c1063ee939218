// The sidecar's store client (StoreSync over StoreClient) against 3 real `vigie agent` processes, while members
// fail under it: the first endpoint is dead at start, the member serving the watch is killed (-9) and restarted on
// the same URL, the next one freezes (SIGSTOP: TCP open, no answers) while the store is compacted past the watcher,
// then the leader is killed. A writer puts /seq/N one after the other throughout; the watcher must end with exactly
// the store's keys, each reported once, in revision order. The scenario is in client-kit.ts, shared with etcd's.
import { existsSync } from "node:fs";
import { test } from "uvu";
import { ClusterFixture, VIGIE_CLI } from "../helpers/cluster.js";
import { runFailoverScenario } from "./client-kit.js";

const startedMs = Date.now();
function step(what: string): void {
  if (process.env.VIGIE_TEST_VERBOSE) console.log(`  +${Date.now() - startedMs} ms: ${what}`);
}

test("a watch on followers sees every write once, in order, through kill -9, restart, SIGSTOP + compaction and a leader kill", async () => {
  if (!existsSync(VIGIE_CLI)) throw new Error(`${VIGIE_CLI} is missing: run npm run build first`);
  const fixture = await ClusterFixture.create("client");
  try {
    const agents = await fixture.startStatic(["m1", "m2", "m3"]);
    const members = agents.map((agent) => ({
      name: agent.name,
      clientUrl: agent.clientUrl,
      get pid() {
        return agent.pid;
      },
      kill: async (signal: "SIGKILL") => await agent.kill(signal),
      restart: async () => await agent.start(),
    }));
    await runFailoverScenario(members, step);
  } finally {
    await fixture.cleanup();
  }
});

test.run();
