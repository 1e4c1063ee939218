// A member removed from the cluster (scale-in, a host replaced) while it serves a watch: vigie's removed member keeps
// running but no longer replicates, so the watch must move to a member that does, not stay quiet on the removed one.
import { existsSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreClient } from "../../src/store/client.js";
import { ClusterFixture, VIGIE_CLI } from "../helpers/cluster.js";
import { assertWatcherSawHistory, SequentialWriter, startWatcher, waitForProgress } from "./client-kit.js";

test("a watch on a member that is removed from the cluster moves to a member that still replicates", async () => {
  if (!existsSync(VIGIE_CLI)) throw new Error(`${VIGIE_CLI} is missing: run npm run build first`);
  const fixture = await ClusterFixture.create("client-removed");
  const closers: Array<() => Promise<void>> = [];
  try {
    const [a, b, c] = await fixture.startStatic(["m1", "m2", "m3"]);
    const timeouts = { requestTimeoutMs: 1000, connectTimeoutMs: 500 };
    const watcher = await startWatcher({ endpoints: [a!.clientUrl, b!.clientUrl, c!.clientUrl], ...timeouts }, 500);
    closers.push(watcher.close);
    const writerClient = new StoreClient({ endpoints: [b!.clientUrl, c!.clientUrl], ...timeouts });
    closers.push(() => writerClient.close());
    const writer = new SequentialWriter(writerClient, 5);
    closers.unshift(() => writer.stop());
    await waitForProgress(watcher, 20, "at start");
    const { members } = await writerClient.memberList();
    const removed = members.find((member) => member.clientUrls.includes(a!.clientUrl));
    assert.ok(removed !== undefined);
    await writerClient.memberRemove(removed.id);
    await waitForProgress(watcher, 20, `after removing ${a!.name}, the member serving the watch`);
    await writer.stop();
    await assertWatcherSawHistory(watcher, writerClient);
  } finally {
    for (const close of closers) await close().catch(() => undefined);
    await fixture.cleanup();
  }
});

test.run();
