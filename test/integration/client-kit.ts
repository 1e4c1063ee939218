// Shared by the client failover tests (client-vigie, client-etcd): the failover scenario itself, run against any
// 3-member cluster; a sequential writer; a StoreSync watcher whose every change and every raw watch response is
// recorded; and the check that the watcher saw exactly the store's history, in order, once. Each key /seq/NNNNN is written once (value = its number), so a missed event leaves a key
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
import { freePort, waitFor } from "../helpers/ports.js";

export const SEQ_PREFIX = "/seq/";

/** One watch stream as the sync opened it: where it asked to start and every revision it delivered. */
export interface RecordedStream {
  startRevision: number;
  revisions: number[];
  /** The member serving it, once it answered. */
  endpointUrl(): string | undefined;
}

/** The real client; every watch stream it opens is recorded on its way to the sync. */
class RecordingClient extends StoreClient {
  readonly streams: RecordedStream[] = [];

  override watch(key: Bytes, options: WatchOptions = {}): WatchStream {
    const stream = super.watch(key, options);
    const record: RecordedStream = {
      startRevision: options.startRevision ?? 0,
      revisions: [],
      endpointUrl: () => stream.endpointUrl,
    };
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
export async function waitForProgress(watcher: Watcher, more: number, what: string, timeoutMs = 20_000): Promise<void> {
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
  // Each key was put once: a version above 1 means the client sent a write twice.
  for (const kv of truth.kvs) assert.is(kv.version, 1, `${kv.key.toString()} written once`);
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

/** A cluster member the scenario can kill (-9), restart on the same URL and data, and freeze. */
export interface ScenarioMember {
  name: string;
  clientUrl: string;
  pid: number | undefined;
  kill(signal: "SIGKILL"): Promise<void>;
  restart(): Promise<void>;
}

async function leaderOf(members: ScenarioMember[]): Promise<ScenarioMember> {
  return await waitFor(
    "a leader",
    async () => {
      for (const member of members) {
        const client = new StoreClient({ endpoints: [member.clientUrl], requestTimeoutMs: 500 });
        const status = await client.status().catch(() => undefined);
        await client.close();
        if (status !== undefined && status.leader !== "0" && status.leader === status.header.memberId) return member;
      }
      return undefined;
    },
    10_000,
  );
}

/**
 * The scenario: a watcher whose endpoints are [dead, follower A, follower B, leader] and a writer putting /seq/N.
 * Then: kill -9 of A (serving the watch), A restarted on the same URL; SIGSTOP of B (serving it now) while the
 * store is compacted past the watcher's revision, so its reconnect is answered "compacted" and must resync; SIGSTOP
 * of the leader (the writer's first endpoint); kill -9 of the leader then. After each step the watcher must make progress; at the end it must have seen the store's history.
 */
export async function runFailoverScenario(members: ScenarioMember[], step: (what: string) => void): Promise<void> {
  const closers: Array<() => Promise<void>> = [];
  try {
    const leader = await leaderOf(members);
    const [first, second] = members.filter((member) => member !== leader) as [ScenarioMember, ScenarioMember];
    step(`leader ${leader.name}; the watch starts on ${first.name}, then ${second.name}`);
    const timeouts = { requestTimeoutMs: 1000, connectTimeoutMs: 500 };
    const dead = `http://127.0.0.1:${await freePort()}`;
    const endpoints = [dead, first.clientUrl, second.clientUrl, leader.clientUrl];
    // The watcher finds a frozen member by a status request that times out: given 3 s, it leaves ~3.5 s after the
    // freeze, time enough for the writes and the compaction of the SIGSTOP step even on a loaded machine.
    const watcher = await startWatcher({ endpoints, ...timeouts, requestTimeoutMs: 3000 }, 500);
    closers.push(watcher.close);
    const writerClient = new StoreClient({
      endpoints: [leader.clientUrl, second.clientUrl, first.clientUrl],
      ...timeouts,
    });
    closers.push(() => writerClient.close());
    const writer = new SequentialWriter(writerClient, 5);
    closers.unshift(() => writer.stop());

    await waitForProgress(watcher, 20, "at start");
    step(`kill -9 ${first.name}`);
    await first.kill("SIGKILL");
    await waitForProgress(watcher, 20, `after killing ${first.name}`);
    step(`restart ${first.name} on the same URL`);
    await first.restart();
    await waitForProgress(watcher, 20, `after restarting ${first.name}`);

    // The member to freeze is the one serving the watch now: the second follower, unless the watch moved since.
    const servingUrl = watcher.client.streams.at(-1)?.endpointUrl();
    const serving = members.find((member) => member.clientUrl === servingUrl);
    assert.ok(serving !== undefined && serving !== leader, `the watch is served by a follower (${servingUrl})`);
    const resyncsBefore = resyncCount(watcher);
    step(`SIGSTOP ${serving.name}, then compact past the watcher's revision`);
    // Signals by pid: a helper's kill() waits for the process to exit, which a stopped one never does.
    process.kill(serving.pid!, "SIGSTOP");
    const frozenMs = performance.now();
    let compaction = "";
    try {
      const frozenAt = watcher.sync.mirror.revision;
      const writtenBefore = writer.written;
      // A few writes take the store past the watcher's revision; no more: the watcher leaves its frozen member
      // ~3.5 s after it froze, and must still be behind the compaction when it does.
      await waitFor("2 more writes", async () => writer.written >= writtenBefore + 2, 5000);
      const compacted = await writerClient.compact(
        (await writerClient.range("/", { countOnly: true })).header.revision,
      );
      compaction =
        `compacted at ${compacted.revision}, ${Math.round(performance.now() - frozenMs)} ms after the freeze ` +
        `(watcher at ${frozenAt} then, ${watcher.sync.mirror.revision} now)`;
      step(compaction);
      await waitForProgress(watcher, 20, `while ${serving.name} is frozen`);
    } finally {
      step(`SIGCONT ${serving.name}`);
      process.kill(serving.pid!, "SIGCONT");
    }
    assert.ok(resyncCount(watcher) > resyncsBefore, `the watcher resynced after the compaction: ${compaction}`);

    // The leader is the writer's first endpoint: its writes time out there (outcome unknown, not resent) and the
    // next ones must go to another member.
    step(`SIGSTOP the leader ${leader.name}`);
    process.kill(leader.pid!, "SIGSTOP");
    try {
      await waitForProgress(watcher, 20, `while the leader ${leader.name} is frozen`);
    } finally {
      step(`SIGCONT ${leader.name}`);
      process.kill(leader.pid!, "SIGCONT");
    }

    const current = await leaderOf(members);
    step(`kill -9 the leader ${current.name}`);
    await current.kill("SIGKILL");
    await waitForProgress(watcher, 20, "after the leader kill");
    await writer.stop();
    step(`writer stopped: ${writer.written} acknowledged, ${writer.failed} failed`);

    const survivors = members.filter((member) => member !== current).map((member) => member.clientUrl);
    const truthClient = new StoreClient({ endpoints: survivors });
    closers.push(() => truthClient.close());
    const keys = await assertWatcherSawHistory(watcher, truthClient);
    assert.ok(keys >= writer.written, "every acknowledged write is in the store");
    step(`${keys} keys seen in order over ${watcher.client.streams.length} watch streams`);
  } finally {
    for (const close of closers) await close().catch(() => undefined);
  }
}

function resyncCount(watcher: Watcher): number {
  const match = /vigie_watch_resyncs_total (\d+)/.exec(watcher.metrics.render());
  return Number(match?.[1] ?? 0);
}
