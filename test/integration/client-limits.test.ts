// The store client's limits must not become a trap. The sidecar's watch refuses a message over 8 MiB (a bound on
// what one line may hold in memory); a watcher that was away while a large value was rewritten many times gets every
// version in one message from etcd (its batches are up to 1000 revisions), and resuming from the same revision gets
// the same message again: without a way out the watcher would never make progress. It must resync from the present
// instead (a few keys, well under the limit), as after a compaction, and report the keys whose values changed.
// The reconnect backoff must be bounded and reset only after a stream that worked: a member that accepts each watch
// and drops it at once must not be hammered at the minimum pause.
import { createServer } from "node:http";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../src/log.js";
import { MetricsRegistry } from "../../src/metrics.js";
import { type Bytes, type RangeOptions, type RangeResult, StoreClient } from "../../src/store/client.js";
import { StoreSync } from "../../src/watch/sync.js";
import { CuttableProxy } from "../fixtures/sidecar/proxy.js";
import { type EtcdProcess, startEtcd } from "../helpers/etcd.js";
import { waitFor } from "../helpers/ports.js";
import { requireTools } from "../helpers/require-tool.js";

const tools = requireTools("store client limits", "etcd");
let etcd: EtcdProcess;

test.before(async () => {
  if (tools) etcd = await startEtcd();
});
test.after(async () => {
  await etcd?.stop();
});

/** 100 versions of a 100 kB value: 10 MB of history, 13 MB once base64-encoded in one watch message. */
const VERSION_COUNT = 100;
const VALUE_BYTES = 100_000;

test("a watch batch larger than the message limit makes the watcher resync, not retry the same batch forever", async () => {
  if (!tools) return;
  const direct = new StoreClient({ endpoints: [etcd.clientUrl] });
  const proxy = new CuttableProxy(new URL(etcd.clientUrl));
  await proxy.open();
  const client = new StoreClient({ endpoints: [`http://127.0.0.1:${proxy.port}`], connectTimeoutMs: 500 });
  const metrics = new MetricsRegistry();
  const changes: string[] = [];
  const sync = new StoreSync(client, silentLogger(), metrics, (keys) => changes.push(...keys));
  try {
    await direct.put("/big/small", "1");
    await sync.load([], ["/big/"]);
    await waitFor("the watch", async () => sync.status().healthy);
    await proxy.cut();
    const value = "v".repeat(VALUE_BYTES);
    for (let i = 0; i < VERSION_COUNT; i++) await direct.put("/big/blob", `${i}${value}`);
    const last = await direct.put("/big/small", "2");
    await proxy.open();
    await waitFor("the mirror to catch up", async () => sync.mirror.revision >= last.header.revision, 10_000).catch(
      (error: unknown) => {
        throw new Error(`${(error as Error).message}; health: ${JSON.stringify(sync.status())}`);
      },
    );
    assert.is(sync.mirror.getKey("/big/small"), "2");
    assert.is(sync.mirror.getKey("/big/blob")?.slice(0, 3), `${VERSION_COUNT - 1}v`);
    assert.equal(changes.sort(), ["/big/blob", "/big/small"], "the changed keys reported once");
    assert.match(metrics.render(), /vigie_watch_resyncs_total 1\b/);
    assert.ok(sync.status().healthy);
    // The watch goes on after the resync.
    await direct.put("/big/small", "3");
    await waitFor("the next event", async () => sync.mirror.getKey("/big/small") === "3", 5000);
  } finally {
    sync.stop();
    await client.close();
    await direct.close();
    await proxy.cut();
  }
});

test("a prefix larger than one answer loads in pages, every page at the first one's revision", async () => {
  if (!tools) return;
  const direct = new StoreClient({ endpoints: [etcd.clientUrl] });
  // 12 values of 1 MB: ~16 MB once base64-encoded, twice what the client accepts in one answer.
  const value = "v".repeat(1_000_000);
  const names = Array.from({ length: 12 }, (_, i) => `/huge/blob-${String(i).padStart(2, "0")}`);
  for (const [i, name] of names.entries()) await direct.put(name, `${i}:${value}`);
  await direct.put("/huge/small", "s");
  const reads: Array<{ key: string; limit: number | undefined; revision: number | undefined; answeredAt: number }> = [];
  let wrote: number | undefined;
  // The real client, with writes slipped in right after the first page answered: one to a key of a later page, one
  // new key. Neither may show up in the load.
  class WriteAfterFirstPage extends StoreClient {
    override async range(key: Bytes, options: RangeOptions = {}): Promise<RangeResult> {
      const result = await super.range(key, options);
      reads.push({
        key: Buffer.from(key).toString("utf8"),
        limit: options.limit,
        revision: options.revision,
        answeredAt: result.header.revision,
      });
      if (wrote === undefined) {
        await direct.put("/huge/blob-11", "rewritten");
        wrote = (await direct.put("/huge/new", "n")).header.revision;
      }
      return result;
    }
  }
  const client = new WriteAfterFirstPage({ endpoints: [etcd.clientUrl] });
  const changes: string[] = [];
  const sync = new StoreSync(client, silentLogger(), new MetricsRegistry(), (keys) => changes.push(...keys));
  try {
    await sync.load([], ["/huge/"]);
    assert.ok(reads.length > 2, `${reads.length} pages`);
    const pinned = reads[0]!.answeredAt;
    assert.ok(wrote !== undefined && wrote > pinned);
    assert.equal(
      reads.slice(1).map((read) => read.revision),
      reads.slice(1).map(() => pinned),
      "every later page read at the first one's revision",
    );
    assert.ok(
      reads.every((read) => read.limit !== undefined && read.limit < 1000 / 2 ** 6),
      `the pages shrank to fit: limits ${reads.map((read) => read.limit).join(",")}`,
    );
    assert.is(sync.mirror.revision, pinned);
    const loaded = sync.mirror.getPrefix("/huge/");
    assert.equal(
      loaded.map((entry) => entry.key),
      [...names, "/huge/small"],
    );
    for (const [i, entry] of loaded.slice(0, names.length).entries()) {
      assert.ok(entry.value === `${i}:${value}`, `${entry.key} loaded whole, as it was at the pinned revision`);
    }
    // The writes are not lost: the watch, which starts after the pinned revision, delivers them.
    await waitFor("the writes as changes", async () => sync.mirror.getKey("/huge/new") === "n", 10_000);
    assert.is(sync.mirror.getKey("/huge/blob-11"), "rewritten");
    assert.equal([...new Set(changes)].sort(), ["/huge/blob-11", "/huge/new"]);
  } finally {
    sync.stop();
    await client.close();
    await direct.close();
  }
});

test("a member that accepts each watch and drops it at once is retried with a growing pause, not at the minimum", async () => {
  // A loopback server plays that member (no real one can be made to do it on demand): reads answer at revision 5,
  // a watch gets its "created" message and the end of the stream.
  let watchRequests = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "application/json" });
      if (request.url === "/v3/watch") {
        watchRequests += 1;
        response.end(`${JSON.stringify({ result: { header: { revision: "5" }, created: true } })}\n`);
      } else {
        response.end(JSON.stringify({ header: { revision: "5" } }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const address = server.address();
  if (address === null || typeof address !== "object") throw new Error("no address");
  const client = new StoreClient({ endpoints: [`http://127.0.0.1:${address.port}`] });
  const sync = new StoreSync(client, silentLogger(), new MetricsRegistry(), () => undefined);
  try {
    await sync.load(["/k"], []);
    await new Promise((r) => setTimeout(r, 2000));
    // Pauses of 50, 100, 200, 400, 800 ms (halved at worst by the jitter) fit about 8 attempts in 2 s; a backoff
    // reset by every "created" retries every 25 to 50 ms, 40 times or more.
    assert.ok(watchRequests <= 12, `${watchRequests} watch requests in 2 s`);
    assert.ok(watchRequests >= 3, `${watchRequests} watch requests in 2 s: it does retry`);
  } finally {
    sync.stop();
    await client.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test.run();
