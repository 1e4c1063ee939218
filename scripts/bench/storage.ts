// Benchmark "storage": the WAL's synced append rate (one writer, 64 concurrent appenders sharing fsyncs) and the
// key space with 100,000 keys: put/range/watch-dispatch throughput, the delay for one event to reach 1,000
// watchers of one key, and the resident memory of a process holding the keys.
// Targets: >= 20,000 synced records/s with 64 appenders; <= 5 ms to reach 1,000 watchers; <= 160 MB resident.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Entry } from "../../src/store/raft/types.js";
import type { Benchmark } from "../bench.js";

// Measure the compiled code the agent runs (`npm run bench` builds dist/ first); fall back to the sources.
const root = fileURLToPath(new URL("../..", import.meta.url));
const compiledKvStore = join(root, "dist/store/mvcc/kv-store.js");
async function load<T>(relative: string): Promise<T> {
  const compiled = join(root, "dist", `${relative}.js`);
  return (await import(existsSync(compiled) ? compiled : join(root, "src", `${relative}.ts`))) as T;
}
const { KvStore } = await load<typeof import("../../src/store/mvcc/kv-store.js")>("store/mvcc/kv-store");
const { decodeCommand, encodeCommand } =
  await load<typeof import("../../src/store/mvcc/commands.js")>("store/mvcc/commands");
const { Wal } = await load<typeof import("../../src/store/wal/wal.js")>("store/wal/wal");
type KvStore = InstanceType<typeof KvStore>;

const RSS_CHILD_ENV = "VIGIE_BENCH_STORAGE_RSS_CHILD";
const VALUE = Buffer.alloc(100, "v");

interface Row {
  measure: string;
  result: string;
  target: string;
}

const keyOf = (i: number) => Buffer.from(`/services/web/instance-${i.toString().padStart(6, "0")}`);

function perSecond(count: number, ms: number): string {
  return `${Math.round((count * 1000) / ms).toLocaleString("en-US")} /s`;
}

async function walAppends(
  writers: number,
  appendsPerWriter: number,
): Promise<{ count: number; ms: number; replayMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), "vigie-bench-wal-"));
  try {
    const { wal } = await Wal.open(dir);
    let nextIndex = 1;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: writers }, async () => {
        for (let n = 0; n < appendsPerWriter; n++) {
          const entry: Entry = { term: 1, index: nextIndex++, type: "normal", data: VALUE };
          await wal.append([entry]);
        }
      }),
    );
    const ms = performance.now() - started;
    await wal.close();
    const replayStarted = performance.now();
    const replay = await Wal.open(dir);
    const replayMs = performance.now() - replayStarted;
    await replay.wal.close();
    if (replay.entries.length !== writers * appendsPerWriter) throw new Error("WAL replay lost entries");
    return { count: writers * appendsPerWriter, ms, replayMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Loads `keys` keys through the full command path (encode -> decode -> apply), as replicas do. */
function loadKeys(store: KvStore, keys: number, firstIndex: number): number {
  let index = firstIndex;
  for (let i = 0; i < keys; i++) {
    const data = encodeCommand({ type: "put", request: { key: keyOf(i), value: VALUE } });
    const result = store.apply(decodeCommand(data), index++);
    if (!result.ok) throw result.error;
  }
  return index;
}

async function watcherFanOut(store: KvStore, watchers: number, rounds: number, nextIndex: number): Promise<number[]> {
  const key = Buffer.from("/db/sql_master");
  const handles = Array.from({ length: watchers }, () => store.watch({ key }));
  for (const handle of handles) await handle.next(); // the "created" message
  const samples: number[] = [];
  // The first rounds run while V8 still collects the garbage of loading 100,000 keys: warm up, then measure.
  const warmUpRounds = 50;
  for (let round = -warmUpRounds; round < rounds; round++) {
    const waits = handles.map((h) => h.next());
    const started = performance.now();
    store.apply({ type: "put", request: { key, value: Buffer.from(`10.0.0.${round % 250}`) } }, nextIndex++);
    await Promise.all(waits);
    if (round >= 0) samples.push(performance.now() - started);
  }
  for (const handle of handles) handle.cancel();
  return samples.sort((a, b) => a - b);
}

function rssChild(keys: number): void {
  const store = new KvStore();
  loadKeys(store, keys, 1);
  globalThis.gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  process.stdout.write(JSON.stringify({ rss, heapUsed, keys: store.indexedKeyCount }));
}

function rssChildSource(keys: number): string {
  return `
    import { KvStore } from ${JSON.stringify(pathToFileURL(compiledKvStore).href)};
    const store = new KvStore();
    const value = Buffer.alloc(100, "v");
    for (let i = 0; i < ${keys}; i++) {
      const key = Buffer.from("/services/web/instance-" + i.toString().padStart(6, "0"));
      store.apply({ type: "put", request: { key, value } }, i + 1);
    }
    globalThis.gc();
    const { rss, heapUsed } = process.memoryUsage();
    process.stdout.write(JSON.stringify({ rss, heapUsed, keys: store.indexedKeyCount }));`;
}

function measureRss(keys: number): { rssMb: number; heapMb: number } {
  // The child holds only the store: plain node on the compiled code when available (as the agent runs).
  const args = existsSync(compiledKvStore)
    ? ["--expose-gc", "--input-type=module", "-e", rssChildSource(keys)]
    : ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url)];
  const child = spawnSync(process.execPath, args, {
    env: { ...process.env, [RSS_CHILD_ENV]: String(keys) },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (child.status !== 0) throw new Error(`RSS child failed: ${child.stderr}`);
  const { rss, heapUsed, keys: held } = JSON.parse(child.stdout) as { rss: number; heapUsed: number; keys: number };
  if (held !== keys) throw new Error(`RSS child holds ${held} keys, expected ${keys}`);
  return { rssMb: rss / 2 ** 20, heapMb: heapUsed / 2 ** 20 };
}

const benchmark: Benchmark = {
  name: "storage",
  description: "WAL synced appends (1 and 64 writers); MVCC put/range/watch with 100,000 keys; fan-out; RSS",
  async run({ quick }) {
    const keys = quick ? 20_000 : 100_000;
    const rows: Row[] = [];

    const single = await walAppends(1, quick ? 300 : 2_000);
    rows.push({ measure: "WAL synced appends, 1 writer", result: perSecond(single.count, single.ms), target: "" });
    const concurrent = await walAppends(64, quick ? 100 : 500);
    rows.push({
      measure: "WAL synced appends, 64 concurrent appenders",
      result: perSecond(concurrent.count, concurrent.ms),
      target: ">= 20,000 /s",
    });
    rows.push({
      measure: `WAL replay at start-up, ${concurrent.count} entries`,
      result: `${concurrent.replayMs.toFixed(0)} ms`,
      target: "",
    });

    const store = new KvStore();
    let started = performance.now();
    let nextIndex = loadKeys(store, keys, 1);
    rows.push({
      measure: `MVCC put (encode+decode+apply), ${keys} keys`,
      result: perSecond(keys, performance.now() - started),
      target: "",
    });

    const gets = quick ? 20_000 : 100_000;
    started = performance.now();
    for (let i = 0; i < gets; i++) store.range({ key: keyOf((i * 7919) % keys) });
    rows.push({ measure: "MVCC range, single key", result: perSecond(gets, performance.now() - started), target: "" });

    const prefixReads = 2_000;
    started = performance.now();
    for (let i = 0; i < prefixReads; i++) {
      const from = (i * 31) % (keys - 100);
      store.range({ key: keyOf(from), range_end: keyOf(from + 100) });
    }
    rows.push({
      measure: "MVCC range, 100 keys",
      result: perSecond(prefixReads, performance.now() - started),
      target: "",
    });

    started = performance.now();
    const all = store.range({ key: Buffer.from("\0"), range_end: Buffer.from("\0") });
    rows.push({
      measure: `MVCC range, all ${all.count} keys`,
      result: `${(performance.now() - started).toFixed(1)} ms`,
      target: "",
    });

    // Watch dispatch: 10,000 watchers on distinct keys (and one prefix watcher), a put to each watched key.
    const watched = Math.min(10_000, keys);
    const watchers = Array.from({ length: watched }, (_, i) => store.watch({ key: keyOf(i) }));
    const prefixWatcher = store.watch({ key: Buffer.from("/services/"), range_end: Buffer.from("/services0") });
    for (const w of [...watchers, prefixWatcher]) w.tryNext();
    started = performance.now();
    let delivered = 0;
    for (let i = 0; i < watched; i++) {
      store.apply({ type: "put", request: { key: keyOf(i), value: VALUE } }, nextIndex++);
      delivered += watchers[i]!.tryNext()?.events.length ?? 0;
      delivered += prefixWatcher.tryNext()?.events.length ?? 0;
    }
    rows.push({
      measure: `watch dispatch (${watched} key watchers + 1 prefix watcher)`,
      result: `${perSecond(delivered, performance.now() - started)} events`,
      target: "",
    });
    for (const w of [...watchers, prefixWatcher]) w.cancel();

    const fanOut = await watcherFanOut(store, 1_000, quick ? 20 : 200, nextIndex);
    const p50 = fanOut[Math.floor(fanOut.length / 2)]!;
    const p99 = fanOut[Math.min(fanOut.length - 1, Math.ceil(fanOut.length * 0.99) - 1)]!;
    rows.push({
      measure: "one event to 1,000 watchers of one key (p50 / p99)",
      result: `${p50.toFixed(2)} / ${p99.toFixed(2)} ms`,
      target: "<= 5 ms",
    });

    started = performance.now();
    const snapshot = store.snapshot();
    const snapshotMs = performance.now() - started;
    started = performance.now();
    new KvStore().restore(snapshot);
    rows.push({
      measure: `key-space snapshot / restore, ${store.indexedKeyCount} keys`,
      result: `${(snapshot.length / 2 ** 20).toFixed(1)} MiB, ${snapshotMs.toFixed(0)} / ${(performance.now() - started).toFixed(0)} ms`,
      target: "",
    });

    const { rssMb, heapMb } = measureRss(keys);
    rows.push({
      measure: `resident memory with ${keys} keys (process total)`,
      result: `${rssMb.toFixed(0)} MB (heap ${heapMb.toFixed(0)} MB)`,
      target: "<= 160 MB",
    });
    console.table(rows);
  },
};

export default benchmark;

if (process.env[RSS_CHILD_ENV] !== undefined) rssChild(Number(process.env[RSS_CHILD_ENV]));
