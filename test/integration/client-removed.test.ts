// A member removed from the cluster (scale-in, a host replaced) while it serves a watch: vigie's removed member keeps
// running, answering, but applies nothing more. The watch must move to a member that still replicates, and a later
// failover that wraps around to the removed member (behind what the watcher saw) must not stay stuck on it.
import { existsSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreClient } from "../../src/store/client.js";
import { ClusterFixture, VIGIE_CLI } from "../helpers/cluster.js";
import { assertWatcherSawHistory, SequentialWriter, startWatcher, waitForProgress } from "./client-kit.js";

const startedMs = Date.now();
function step(what: string): void {
  if (process.env.VIGIE_TEST_VERBOSE) console.log(`  +${Date.now() - startedMs} ms: ${what}`);
}

test("a watch on a member removed from the cluster moves on, and does not get stuck on it later", async () => {
  if (!existsSync(VIGIE_CLI)) throw new Error(`${VIGIE_CLI} is missing: run npm run build first`);
  const fixture = await ClusterFixture.create("client-removed");
  const closers: Array<() => Promise<void>> = [];
  try {
    // Four voters, so that after the removal one more member can be down and the other two still commit.
    const [a, b, c, d] = (await fixture.startStatic(["m1", "m2", "m3", "m4"])) as [
      (typeof fixture.agents)[number],
      (typeof fixture.agents)[number],
      (typeof fixture.agents)[number],
      (typeof fixture.agents)[number],
    ];
    const timeouts = { requestTimeoutMs: 1000, connectTimeoutMs: 500 };
    const watcher = await startWatcher({ endpoints: [a.clientUrl, b.clientUrl, c.clientUrl], ...timeouts }, 500);
    closers.push(watcher.close);
    const writerClient = new StoreClient({ endpoints: [d.clientUrl, b.clientUrl, c.clientUrl], ...timeouts });
    closers.push(() => writerClient.close());
    const writer = new SequentialWriter(writerClient, 5);
    closers.unshift(() => writer.stop());
    await waitForProgress(watcher, 20, "at start");

    const { members } = await writerClient.memberList();
    const removed = members.find((member) => member.clientUrls.includes(a.clientUrl));
    assert.ok(removed !== undefined);
    step(`remove ${a.name}, which serves the watch`);
    // Through a client of its own: a conf change under this load can take longer than the 1 s the others allow.
    const adminClient = new StoreClient({
      endpoints: [d.clientUrl, b.clientUrl, c.clientUrl],
      requestTimeoutMs: 10_000,
    });
    closers.push(() => adminClient.close());
    await adminClient.memberRemove(removed.id);
    await waitForProgress(watcher, 20, `after removing ${a.name}, the member serving the watch`);

    // The watch is on b now. Kill b (the watch goes to c), bring it back, then kill c: the failover from c wraps
    // around to the removed member first, which is behind the watcher.
    step(`kill -9 ${b.name}`);
    await b.kill("SIGKILL");
    await waitForProgress(watcher, 20, `after killing ${b.name}`);
    step(`restart ${b.name}`);
    await b.start();
    step(`kill -9 ${c.name}`);
    await c.kill("SIGKILL");
    await waitForProgress(watcher, 20, `after killing ${c.name}, with the removed ${a.name} next in the list`);
    await writer.stop();
    await assertWatcherSawHistory(watcher, writerClient);
  } finally {
    for (const close of closers) await close().catch(() => undefined);
    await fixture.cleanup();
  }
});

test.run();
