// Shared by the client failover tests (client-vigie, client-etcd): a sequential writer, a StoreSync watcher whose
// every change and every raw watch response is recorded, and the check that the watcher saw exactly the store's
// history, in order, once. Each key /seq/NNNNN is written once (value = its number), so a missed event leaves a key
// out, a duplicate reports a key twice, and an out-of-order delivery breaks the revision order of the reports.
import * as assert from "uvu/assert";
import { silentLogger } from "../../src/log.js";
import { MetricsRegistry } from "../../src/metrics.js";
import {
  type Bytes,
  StoreClient,
  type TransportOptions,
  type WatchOptions,
  type WatchResponse,
  type WatchStream,
} from "../../src/store/client.js";
import { StoreSync } from "../../src/watch/sync.js";
import { waitFor } from "../helpers/ports.js";

export const SEQ_PREFIX = "/seq/";

/** One watch stream as the sync opened it: where it asked to start and every revision it delivered. */
export interface RecordedStream {
  startRevision: number;
  revisions: number[];
}

/** The real client; every watch stream it opens is recorded on its way to the sync. */
class RecordingClient extends StoreClient {
  readonly streams: RecordedStream[] = [];

  override watch(key: Bytes, options: WatchOptions = {}): WatchStream {
    const stream = super.watch(key, options);
    const record: RecordedStream = { startRevision: options.startRevision ?? 0, revisions: [] };
    this.streams.push(record);
    const inner = stream[Symbol.asyncIterator].bind(stream);
    (stream as { [Symbol.asyncIterator]: () => AsyncIterator<WatchResponse> })[Symbol.asyncIterator] =
      async function* () {
        const iterator = inner();
        for (;;) {
          const next = await iterator.next();
          if (next.done === true) return;
          for (const event of next.value.events) record.revisions.push(event.kv.modRevision);
          yield next.value;
        }
      };
    return stream;
  }
}

export interface Watcher {
  client: RecordingClient;
  sync: StoreSync;
  metrics: MetricsRegistry;
  /** Every change the sync reported: the keys and the revision the mirror was at. */
  changes: Array<{ keys: string[]; revision: number }>;
  /** How many /seq/ keys the mirror holds. */
  seen(): number;
  close(): Promise<void>;
}

export async function startWatcher(options: TransportOptions, probeIntervalMs: number): Promise<Watcher> {
  const client = new RecordingClient(options);
  const metrics = new MetricsRegistry();
  const changes: Watcher["changes"] = [];
  const sync = new StoreSync(
    client,
    silentLogger(),
    metrics,
    (keys, revision) => changes.push({ keys: [...keys], revision }),
    probeIntervalMs,
  );
  await sync.load([], [SEQ_PREFIX]);
  return {
    client,
    sync,
    metrics,
    changes,
    seen: () => sync.mirror.getPrefix(SEQ_PREFIX).length,
    close: async () => {
      sync.stop();
      await client.close();
    },
  };
}

/**
 * Puts /seq/00001, /seq/00002... one after the other until stopped. A write that fails is never sent again (its
 * outcome may be unknown); the next number is written instead, after a short pause.
 */
export class SequentialWriter {
  written = 0;
  failed = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly client: StoreClient,
    pauseMs: number,
  ) {
    this.done = this.run(pauseMs);
  }

  private async run(pauseMs: number): Promise<void> {
    for (let i = 1; !this.stopped; i++) {
      try {
        await this.client.put(`${SEQ_PREFIX}${String(i).padStart(5, "0")}`, String(i));
        this.written += 1;
        await sleep(pauseMs);
      } catch {
        this.failed += 1;
        await sleep(100);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until the watcher's mirror holds `more` keys beyond what it held when called. */
export async function waitForProgress(watcher: Watcher, more: number, what: string, timeoutMs = 8000): Promise<void> {
  const target = watcher.seen() + more;
  await waitFor(`${more} more events ${what} (at ${watcher.seen()})`, async () => watcher.seen() >= target, timeoutMs);
}

/**
 * The store's /seq/ keys, read linearizably once the writer stopped, against what the watcher reported: the same
 * keys and values, each reported once, the reports in revision order. Within each raw watch stream the revisions
 * only grow and start at or after the revision asked for.
 */
export async function assertWatcherSawHistory(watcher: Watcher, truthClient: StoreClient): Promise<number> {
  const truth = await truthClient.range(SEQ_PREFIX, { prefix: true });
  const modRevisionOf = new Map(truth.kvs.map((kv) => [kv.key.toString(), kv.modRevision]));
  const expected = truth.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]);
  await waitFor(
    "the mirror to hold every written key",
    async () => watcher.seen() === expected.length && watcher.sync.mirror.revision >= truth.header.revision,
    10_000,
  ).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}: mirror ${watcher.seen()}, store ${expected.length}`);
  });
  assert.equal(
    watcher.sync.mirror.getPrefix(SEQ_PREFIX).map((entry) => [entry.key, entry.value]),
    expected,
    "the mirror equals the store",
  );
  const reported = watcher.changes.flatMap((change) => change.keys);
  assert.is(new Set(reported).size, reported.length, "no key reported twice");
  assert.equal([...reported].sort(), [...modRevisionOf.keys()].sort(), "every key reported");
  let previousMax = 0;
  for (const change of watcher.changes) {
    const revisions = change.keys.map((key) => modRevisionOf.get(key)!);
    assert.ok(Math.min(...revisions) > previousMax, `reports in revision order (${change.keys.join(",")})`);
    previousMax = Math.max(...revisions);
    assert.ok(change.revision >= previousMax, "a report's revision covers its keys");
  }
  for (const stream of watcher.client.streams) {
    for (let i = 0; i < stream.revisions.length; i++) {
      const revision = stream.revisions[i]!;
      assert.ok(revision >= stream.startRevision, `stream from ${stream.startRevision} delivered ${revision}`);
      if (i > 0) assert.ok(revision > stream.revisions[i - 1]!, "revisions grow within a stream");
    }
  }
  return expected.length;
}
