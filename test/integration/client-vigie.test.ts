// The sidecar's store client (StoreSync over StoreClient) against 3 real `vigie agent` processes, while members
// fail under it: the first endpoint is dead at start, the member serving the watch is killed (-9) and restarted on
// the same URL, the next one freezes (SIGSTOP: TCP open, no answers), then the leader is killed. A writer puts
// /seq/N one after the other throughout; the watcher must end with exactly the store's keys, each reported once, in
// revision order.
import { existsSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreClient } from "../../src/store/client.js";
import { type AgentProcess, ClusterFixture, VIGIE_CLI } from "../helpers/cluster.js";
import { freePort, waitFor } from "../helpers/ports.js";
import { assertWatcherSawHistory, SequentialWriter, startWatcher, waitForProgress } from "./client-kit.js";

const startedMs = Date.now();
function step(what: string): void {
  if (process.env.VIGIE_TEST_VERBOSE) console.log(`  +${Date.now() - startedMs} ms: ${what}`);
}

async function leaderOf(agents: AgentProcess[]): Promise<AgentProcess> {
  return await waitFor(
    "a leader",
    async () => {
      for (const agent of agents) {
        if (!agent.alive()) continue;
        const status = await new StoreClient({ endpoints: [agent.clientUrl], requestTimeoutMs: 500 })
          .status(agent.clientUrl)
          .catch(() => undefined);
        if (status !== undefined && status.leader !== "0" && status.leader === status.header.memberId) return agent;
      }
      return undefined;
    },
    10_000,
  );
}

test("a watch on followers sees every write once, in order, through kill -9, restart, SIGSTOP and a leader kill", async () => {
  if (!existsSync(VIGIE_CLI)) throw new Error(`${VIGIE_CLI} is missing: run npm run build first`);
  const fixture = await ClusterFixture.create("client");
  const closers: Array<() => Promise<void>> = [];
  try {
    const agents = await fixture.startStatic(["m1", "m2", "m3"]);
    const leader = await leaderOf(agents);
    const [first, second] = agents.filter((agent) => agent !== leader) as [AgentProcess, AgentProcess];
    step(`leader ${leader.name}; the watch starts on ${first.name}, then ${second.name}`);
    // The first endpoint is dead at start; the watch then goes to the first live one, a follower.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const watcher = await startWatcher(
      {
        endpoints: [dead, first.clientUrl, second.clientUrl, leader.clientUrl],
        requestTimeoutMs: 1000,
        connectTimeoutMs: 500,
      },
      500,
    );
    closers.push(watcher.close);
    const writerClient = new StoreClient({
      endpoints: [leader.clientUrl, second.clientUrl, first.clientUrl],
      requestTimeoutMs: 1000,
      connectTimeoutMs: 500,
    });
    closers.push(() => writerClient.close());
    const writer = new SequentialWriter(writerClient, 5);
    closers.unshift(() => writer.stop());

    await waitForProgress(watcher, 20, "at start");
    step(`kill -9 ${first.name}`);
    await first.kill("SIGKILL");
    await waitForProgress(watcher, 20, `after killing ${first.name}`);
    step(`restart ${first.name} on the same URL`);
    await first.start();
    await waitForProgress(watcher, 20, `after restarting ${first.name}`);

    step(`SIGSTOP ${second.name}`);
    // Signals sent by pid: AgentProcess.kill() waits for the process to exit, which a stopped one never does.
    process.kill(second.pid!, "SIGSTOP");
    try {
      await waitForProgress(watcher, 20, `while ${second.name} is frozen`);
    } finally {
      step(`SIGCONT ${second.name}`);
      process.kill(second.pid!, "SIGCONT");
    }

    step(`kill -9 the leader ${leader.name}`);
    await leader.kill("SIGKILL");
    await waitForProgress(watcher, 20, "after the leader kill");
    await writer.stop();
    step(`writer stopped: ${writer.written} acknowledged, ${writer.failed} failed`);

    const truthClient = new StoreClient({ endpoints: [first.clientUrl, second.clientUrl] });
    closers.push(() => truthClient.close());
    const keys = await assertWatcherSawHistory(watcher, truthClient);
    assert.ok(keys >= writer.written, "every acknowledged write is in the store");
    step(`${keys} keys seen in order over ${watcher.client.streams.length} watch streams`);
  } finally {
    for (const close of closers) await close().catch(() => undefined);
    await fixture.cleanup();
  }
});

test.run();
