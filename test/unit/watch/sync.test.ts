// StoreSync against a real etcd through a TCP proxy the test can cut: loading at one revision, events applied
// in order, reconnect resuming after the last revision without spurious changes, resync after compaction
// reporting only the keys that really changed, and the unhealthy status while the store is unreachable.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../../src/log.js";
import { MetricsRegistry } from "../../../src/metrics.js";
import {
  type Bytes,
  type RangeOptions,
  type RangeResult,
  StoreClient,
  type WatchOptions,
  type WatchStream,
} from "../../../src/store/client.js";
import { StoreSync } from "../../../src/watch/sync.js";
import { CuttableProxy } from "../../fixtures/sidecar/proxy.js";
import { type EtcdProcess, startEtcd } from "../../helpers/etcd.js";
import { waitFor } from "../../helpers/ports.js";
import { requireTools } from "../../helpers/require-tool.js";

const tools = requireTools("watch sync", "etcd");

let etcd: EtcdProcess;
let direct: StoreClient;

test.before(async () => {
  if (!tools) return;
  etcd = await startEtcd();
  direct = new StoreClient({ endpoints: [etcd.clientUrl] });
});
test.after(async () => {
  await direct?.close();
  await etcd?.stop();
});

function t(name: string, body: () => Promise<void>) {
  test(name, async () => {
    if (tools) await body();
  });
}

async function setup(prefix: string) {
  const proxy = new CuttableProxy(new URL(etcd.clientUrl));
  await proxy.open();
  const client = new StoreClient({ endpoints: [`http://127.0.0.1:${proxy.port}`], connectTimeoutMs: 500 });
  const changes: string[][] = [];
  const metrics = new MetricsRegistry();
  const sync = new StoreSync(client, silentLogger(), metrics, (keys) => changes.push([...keys].sort()));
  const close = async () => {
    sync.stop();
    await client.close();
    await proxy.cut();
  };
  await direct.put(`${prefix}/a`, "1");
  await direct.put(`${prefix}/svc/x`, "x1");
  return { proxy, client, sync, changes, close, metrics };
}

t("loads keys and prefixes at one revision and applies later events", async () => {
  const s = await setup("/s1");
  try {
    await s.sync.load(["/s1/a", "/s1/missing"], ["/s1/svc/"]);
    const loadedAt = s.sync.mirror.revision;
    assert.ok(loadedAt > 0);
    assert.is(s.sync.mirror.getKey("/s1/a"), "1");
    assert.is(s.sync.mirror.getKey("/s1/missing"), undefined);
    const put = await direct.put("/s1/svc/y", "y1");
    await direct.put("/s1/unrelated", "z");
    await waitFor("the event", async () => s.changes.length > 0);
    assert.equal(s.changes, [["/s1/svc/y"]]);
    assert.is(s.sync.mirror.revision, put.header.revision);
    await direct.txn({ success: [{ put: "/s1/a", value: "2" }, { deleteRange: "/s1/svc/x" }] });
    await waitFor("the txn", async () => s.changes.length > 1);
    assert.equal(s.changes[1], ["/s1/a", "/s1/svc/x"]);
    assert.ok(s.sync.status().healthy);
  } finally {
    await s.close();
  }
});

t("values that are not UTF-8 text are marked as such, whether loaded or delivered by the watch", async () => {
  const s = await setup("/s9");
  const binary = Buffer.from([0x61, 0xff, 0xfe, 0x62]);
  try {
    await direct.put("/s9/bin", binary);
    await direct.put("/s9/svc/bin", binary);
    await s.sync.load(["/s9/bin", "/s9/a"], ["/s9/svc/"]);
    assert.ok(s.sync.mirror.notText("/s9/bin") && s.sync.mirror.notText("/s9/svc/bin"));
    assert.not.ok(s.sync.mirror.notText("/s9/a") || s.sync.mirror.notText("/s9/svc/x"));
    await direct.put("/s9/a", binary);
    await waitFor("the event", async () => s.sync.mirror.notText("/s9/a"));
    await direct.put("/s9/bin", "text now");
    await waitFor("the second event", async () => !s.sync.mirror.notText("/s9/bin"));
    assert.is(s.sync.mirror.getKey("/s9/bin"), "text now");
  } finally {
    await s.close();
  }
});

t("a write between the range requests of one load is not seen: every read is at the first one's revision", async () => {
  await direct.put("/s7/a", "1");
  await direct.put("/s7/svc/x", "x1");
  const reads: Array<{ key: string; revision: number | undefined; answeredAt: number }> = [];
  let wrote: number | undefined;
  // The real client, with a write to the store slipped in right after the first read answered.
  class WriteAfterFirstRead extends StoreClient {
    override async range(key: Bytes, options: RangeOptions = {}): Promise<RangeResult> {
      const result = await super.range(key, options);
      reads.push({ key: String(key), revision: options.revision, answeredAt: result.header.revision });
      if (wrote === undefined) {
        wrote = (
          await direct.txn({
            success: [
              { put: "/s7/a", value: "2" },
              { put: "/s7/svc/y", value: "y1" },
            ],
          })
        ).header.revision;
      }
      return result;
    }
  }
  const client = new WriteAfterFirstRead({ endpoints: [etcd.clientUrl] });
  const changes: string[][] = [];
  const sync = new StoreSync(client, silentLogger(), new MetricsRegistry(), (keys) => changes.push([...keys].sort()));
  try {
    await sync.load(["/s7/a", "/s7/b"], ["/s7/svc/"]);
    assert.is(reads.length, 3);
    const pinned = reads[0]!.answeredAt;
    assert.ok(wrote !== undefined && wrote > pinned);
    // The second and third reads asked for the first one's revision, though the store had moved on.
    assert.equal(
      reads.slice(1).map((read) => read.revision),
      [pinned, pinned],
    );
    assert.is(sync.mirror.revision, pinned);
    assert.is(sync.mirror.getKey("/s7/a"), "1");
    assert.equal(
      sync.mirror.getPrefix("/s7/svc/").map((entry) => entry.key),
      ["/s7/svc/x"],
    );
    // The write is not lost: the watch, which starts after the pinned revision, delivers it.
    await waitFor("the write as a change", async () => changes.length > 0, 5000);
    assert.equal(changes, [["/s7/a", "/s7/svc/y"]]);
    assert.is(sync.mirror.getKey("/s7/a"), "2");
  } finally {
    sync.stop();
    await client.close();
  }
});

t("a dependency outside the watched range restarts the stream without losing events", async () => {
  const s = await setup("/s2");
  try {
    await s.sync.load(["/s2/a"], []);
    await s.sync.load([], ["/zz/s2/"]);
    await direct.put("/zz/s2/k", "v");
    await direct.put("/s2/a", "changed");
    await waitFor("both events", async () => s.changes.flat().length >= 2);
    assert.equal(s.changes.flat().sort(), ["/s2/a", "/zz/s2/k"]);
  } finally {
    await s.close();
  }
});

t("an outage makes it unhealthy; reconnecting resumes with no spurious change, then delivers missed ones", async () => {
  const s = await setup("/s3");
  try {
    await s.sync.load(["/s3/a"], ["/s3/svc/"]);
    await s.proxy.cut();
    await waitFor("unhealthy", async () => !s.sync.status().healthy);
    assert.match(s.sync.status().reason ?? "", "store unreachable");
    await s.proxy.open();
    await waitFor("healthy again", async () => s.sync.status().healthy, 5000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.changes, [], "nothing changed, nothing reported");
    await s.proxy.cut();
    await direct.put("/s3/a", "while-away");
    await s.proxy.open();
    await waitFor("the missed change", async () => s.changes.length > 0, 5000);
    assert.equal(s.changes, [["/s3/a"]]);
    assert.is(s.sync.mirror.getKey("/s3/a"), "while-away");
  } finally {
    await s.close();
  }
});

t("after a compaction it resyncs and reports only the keys whose values changed", async () => {
  const s = await setup("/s4");
  try {
    await direct.put("/s4/svc/y", "y1");
    await direct.put("/s4/bin", Buffer.from([0xff]));
    await s.sync.load(["/s4/a", "/s4/bin"], ["/s4/svc/"]);
    await s.proxy.cut();
    await direct.put("/s4/a", "1"); // same value: not a change
    await direct.put("/s4/svc/y", "y2");
    await direct.deleteRange("/s4/svc/x");
    // The replacement character as text: decodes like the binary value did, but now renders.
    await direct.put("/s4/bin", "\ufffd");
    const last = await direct.put("/s4/unrelated", "u");
    await direct.compact(last.header.revision);
    await s.proxy.open();
    await waitFor("the resync", async () => s.changes.length > 0, 5000);
    assert.equal(s.changes, [["/s4/bin", "/s4/svc/x", "/s4/svc/y"]]);
    assert.not.ok(s.sync.mirror.notText("/s4/bin"));
    assert.ok(s.sync.mirror.revision >= last.header.revision);
    assert.match(s.metrics.render(), /vigie_watch_resyncs_total 1/);
    // Events after the resync flow again.
    await direct.put("/s4/a", "after");
    await waitFor("a later event", async () => s.changes.length > 1);
    assert.equal(s.changes[1], ["/s4/a"]);
  } finally {
    await s.close();
  }
});

t("a store replaced by one at an older revision is resynced, not waited for", async () => {
  const other = await startEtcd({ name: "replacement" });
  const s = await setup("/s6");
  const otherClient = new StoreClient({ endpoints: [other.clientUrl] });
  try {
    for (let i = 0; i < 20; i++) await direct.put("/s6/a", `old-${i}`);
    await s.sync.load(["/s6/a"], []);
    assert.ok(s.sync.mirror.revision > 20);
    await otherClient.put("/s6/a", "new");
    // The proxy now leads to a fresh etcd whose revision is far behind.
    await s.proxy.cut();
    s.proxy.retarget(new URL(other.clientUrl));
    await s.proxy.open();
    await waitFor("the resync", async () => s.sync.mirror.getKey("/s6/a") === "new", 5000);
    assert.equal(s.changes, [["/s6/a"]]);
    await otherClient.put("/s6/a", "after");
    await waitFor("later events", async () => s.sync.mirror.getKey("/s6/a") === "after", 5000);
  } finally {
    await s.close();
    await otherClient.close();
    await other.stop();
  }
});

t("a lagging member answering the watch is waited out, not resynced from (no rollback)", async () => {
  // The lagging member is a separate etcd at a low revision; the first two watch streams go to it, as a client with
  // several endpoints may reach a member that was partitioned, while reads reach the caught-up store.
  const lagging = await startEtcd({ name: "lagging" });
  const laggingClient = new StoreClient({ endpoints: [lagging.clientUrl] });
  let watchesToLagging = 2;
  class OneMemberLags extends StoreClient {
    override watch(key: Bytes, options: WatchOptions = {}): WatchStream {
      if (watchesToLagging === 0) return super.watch(key, options);
      watchesToLagging -= 1;
      return laggingClient.watch(key, options);
    }
  }
  const client = new OneMemberLags({ endpoints: [etcd.clientUrl] });
  const changes: string[][] = [];
  const metrics = new MetricsRegistry();
  const sync = new StoreSync(client, silentLogger(), metrics, (keys) => changes.push([...keys].sort()));
  try {
    for (let i = 0; i < 20; i++) await direct.put("/s8/a", `v${i}`);
    await laggingClient.put("/s8/a", "stale");
    await sync.load(["/s8/a"], []);
    assert.is(sync.mirror.getKey("/s8/a"), "v19");
    await waitFor("a watch on the caught-up store", async () => watchesToLagging === 0 && sync.status().healthy, 5000);
    assert.is(sync.mirror.getKey("/s8/a"), "v19");
    assert.equal(changes, [], "nothing rolled back");
    assert.not.match(metrics.render(), /vigie_watch_resyncs_total [1-9]/);
    await direct.put("/s8/a", "next");
    await waitFor("the next change", async () => sync.mirror.getKey("/s8/a") === "next", 5000);
    assert.equal(changes, [["/s8/a"]]);
  } finally {
    sync.stop();
    await client.close();
    await laggingClient.close();
    await lagging.stop();
  }
});

t("a store that stops answering without closing the stream is detected by the probe", async () => {
  const client = new StoreClient({ endpoints: [etcd.clientUrl], requestTimeoutMs: 300 });
  const sync = new StoreSync(client, silentLogger(), new MetricsRegistry(), () => undefined, 200);
  try {
    await direct.put("/s5/a", "1");
    await sync.load(["/s5/a"], []);
    await waitFor("the stream", async () => sync.status().healthy);
    etcd.process.kill("SIGSTOP");
    try {
      await waitFor("unhealthy", async () => !sync.status().healthy, 5000);
      assert.match(sync.status().reason ?? "", "store unreachable");
    } finally {
      etcd.process.kill("SIGCONT");
    }
    await waitFor("healthy again", async () => sync.status().healthy, 10_000);
    await direct.put("/s5/a", "2");
    await waitFor("events flow again", async () => sync.mirror.getKey("/s5/a") === "2", 5000);
  } finally {
    sync.stop();
    await client.close();
  }
});

test.run();
