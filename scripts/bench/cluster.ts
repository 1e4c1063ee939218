// Benchmark "cluster": a 3-member vigie cluster (real agents) and a 3-member etcd 3.4 cluster side by side on
// loopback, driven by the same client (the etcd v3 JSON API). Prints sequential put latency, put throughput with 64
// concurrent clients, linearizable range throughput, put -> watch event latency on a follower, unavailability after
// kill -9 of the leader, and the resident memory of the largest member idle and holding 10,000 and 100,000 keys (with,
// at 10,000, the file-backed part: the executable's pages) and again after the load phases, and the members' CPU
// time and their wait for a core (runnable, not running) per sequential put and per watch round; then vigie/etcd
// ratios.
// Targets: put throughput >= 1.0x etcd, put p50 <= 1.0x, watch p99 <= 1.0x, unavailability <= 0.5x;
// RSS <= 64 MB with 10,000 keys and <= 160 MB with 100,000 keys.
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StoreClient } from "../../src/store/client.js";
import { createPrng, randomInt } from "../../src/store/raft/prng.js";
import { ClusterFixture, type EtcdMember, startEtcdCluster } from "../../test/helpers/cluster.js";
import { findExecutable } from "../../test/helpers/require-tool.js";
import type { Benchmark, BenchOptions } from "../bench.js";

interface Member {
  name: string;
  clientUrl: string;
  pid(): number | undefined;
  kill(): Promise<void>;
}

interface Target {
  label: "vigie" | "etcd";
  members: Member[];
  close(): Promise<void>;
}

type Results = Map<string, number>;

const VALUE = "v".repeat(100);
/**
 * Sequential puts (and put -> watch rounds) timed per target. A p99 is then the 20th slowest sample: with 500, it was
 * the 5th, and three runs of the same code gave a watch p99 ratio of 1.29x to 2.17x.
 */
const SAMPLES_FOR_P99 = 2000;
/**
 * Sequential puts before the timed ones, on both targets. vigie's members run JavaScript, which V8 compiles to
 * optimized code only once it is hot: in a probe, a 3-member cluster's CPU per sequential put fell from 2.4 ms over the
 * first 500 puts to 0.75 ms after ~3,500, and its p50 from 1.6 to 0.75 ms (the bulk load of the memory phase warms
 * the txn path, not this one). With 200 warm-up puts, the timed ones were mostly warm-up. They are timed too and
 * printed as their own rows: a restarted agent pays for them.
 */
const WARMUP_PUTS = 3000;
/**
 * put -> watch rounds before the timed ones: the follower's watch path warms up the same way (in a probe on a fresh
 * cluster, vigie's watch p99 settled after ~2,500 rounds, from 5-7 ms to 2-3 ms, etcd's at 2-3 ms throughout).
 */
const WARMUP_WATCH_ROUNDS = 3000;
/** Timed watch rounds per turn when the watch phase alternates between the targets (~0.15 s each). */
const WATCH_BLOCK_ROUNDS = 100;
const clients: StoreClient[] = [];

function client(endpoints: string[], connections = 4): StoreClient {
  const c = new StoreClient({ endpoints, requestTimeoutMs: 5000, connectionsPerEndpoint: connections });
  clients.push(c);
  return c;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
}

/** Resamples drawn by bootstrapRatioInterval; seeded, so that the same latencies print the same interval. */
const BOOTSTRAP_RESAMPLES = 2000;

/**
 * How far a ratio of two percentiles moves with the sample alone: both lists are drawn again with replacement (each
 * at its own size) BOOTSTRAP_RESAMPLES times, and the 5th and 95th percentiles of the resamples' ratios are returned.
 * A p99 is set by a few dozen rounds, so its ratio carries this noise even on a machine that does not drift; the
 * drift between runs comes on top (README, "Write latency"). `numerator` and `denominator` must be sorted.
 */
function bootstrapRatioInterval(numerator: number[], denominator: number[], p: number): [number, number] {
  const random = createPrng(BOOTSTRAP_RESAMPLES);
  const resampledPercentile = (sorted: number[], indexes: Uint32Array): number => {
    // Sorting the drawn indexes sorts the resample: `sorted` is in ascending order.
    for (let i = 0; i < indexes.length; i++) indexes[i] = randomInt(random, sorted.length);
    indexes.sort();
    const index = indexes[Math.min(indexes.length - 1, Math.floor((indexes.length * p) / 100))] ?? 0;
    return sorted[index] ?? Number.NaN;
  };
  const numeratorIndexes = new Uint32Array(numerator.length);
  const denominatorIndexes = new Uint32Array(denominator.length);
  const ratios: number[] = [];
  for (let i = 0; i < BOOTSTRAP_RESAMPLES; i++) {
    ratios.push(
      resampledPercentile(numerator, numeratorIndexes) / resampledPercentile(denominator, denominatorIndexes),
    );
  }
  ratios.sort((a, b) => a - b);
  return [percentile(ratios, 5), percentile(ratios, 95)];
}

/** Lines printed under the table (what a single number of it cannot say). */
const notes: string[] = [];

/** A /proc/<pid>/status memory field (VmRSS: resident; RssFile: its file-backed part) in MB. */
function statusMb(pid: number | undefined, field: "VmRSS" | "RssFile"): number {
  if (pid === undefined) return Number.NaN;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]);
  return kb / 1024;
}

/**
 * CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat (fields 14 and 15, in clock ticks of
 * 10 ms: USER_HZ is 100 on every Linux node runs on).
 */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  // The command name (field 2) may hold spaces: count fields from after its closing parenthesis.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Sums a field of each /proc/<pid>/task/<tid>/schedstat over a process's threads, in ms: field 0 is the time they
 * ran, field 1 the time they were runnable but waited for a core (ns). On 2 cores, three members and the client want
 * a core at the same moments of every put; the wait is how long they queued for one. A thread that ended between two
 * reads drops out of the sum, so a difference can only understate.
 */
function schedstatMs(pid: number | undefined, field: 0 | 1): number {
  if (pid === undefined) return Number.NaN;
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[field]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ns / 1e6;
}

function membersCpuMs(target: Target): number {
  return target.members.reduce((sum, m) => sum + cpuMs(m.pid()), 0);
}

/** CPU time of the members to the nanosecond (cpuMs counts 10 ms ticks: too coarse for a block of watch rounds). */
function membersRunMs(target: Target): number {
  return target.members.reduce((sum, m) => sum + schedstatMs(m.pid(), 0), 0);
}

function membersRunQueueWaitMs(target: Target): number {
  return target.members.reduce((sum, m) => sum + schedstatMs(m.pid(), 1), 0);
}

function rssMb(pid: number | undefined): number {
  return statusMb(pid, "VmRSS");
}

/**
 * Records the largest member's RSS under `label`, and how much of it is file-backed: pages of the executable and
 * its libraries (for vigie, mostly the node binary's own code, which no change to vigie's JS shrinks) as opposed
 * to the process's own memory (JS heap, buffers, malloc).
 */
function recordRss(target: Target, results: Results, label: string, withFileBacked: boolean): void {
  const largest = target.members.map((m) => m.pid()).reduce((a, b) => (rssMb(b) > rssMb(a) ? b : a));
  results.set(`RSS ${label} (MB)`, rssMb(largest));
  if (withFileBacked) results.set(`RSS ${label}: file-backed part (MB)`, statusMb(largest, "RssFile"));
}

async function leaderOf(target: Target): Promise<Member> {
  for (let attempt = 0; attempt < 100; attempt++) {
    for (const member of target.members) {
      const status = await client([member.clientUrl])
        .status()
        .catch(() => undefined);
      if (status && status.leader !== "0" && status.leader === status.header.memberId) return member;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${target.label}: no leader`);
}

/** Loads keys with txns of 100 puts (fast to load; memory is what is measured). */
async function loadKeys(c: StoreClient, from: number, to: number): Promise<void> {
  const batches: Array<[number, number]> = [];
  for (let i = from; i < to; i += 100) batches.push([i, Math.min(to, i + 100)]);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < batches.length) {
        const [lo, hi] = batches[next++]!;
        const success = [];
        for (let i = lo; i < hi; i++) success.push({ put: `/mem/key-${i.toString().padStart(7, "0")}`, value: VALUE });
        await c.txn({ success });
      }
    }),
  );
}

type Phase = (target: Target, options: BenchOptions, results: Results) => Promise<void>;
/** A phase that drives all targets itself (see watchPhase). */
interface JointPhase {
  joint(targets: Array<[Target, Results]>, options: BenchOptions): Promise<void>;
}

/** Memory first, on fresh clusters: the keys each member holds. */
const memoryPhase: Phase = async (target, options, results) => {
  const leader = await leaderOf(target);
  recordRss(target, results, "idle, no keys", false);
  const loader = client([leader.clientUrl], 8);
  await loadKeys(loader, 0, 10_000);
  await new Promise((r) => setTimeout(r, 500));
  recordRss(target, results, "with 10,000 keys", true);
  if (!options.quick) {
    await loadKeys(loader, 10_000, 100_000);
    await new Promise((r) => setTimeout(r, 500));
    recordRss(target, results, "with 100,000 keys", false);
  }
};

/** Every member's WAL fsync histogram, summed: how many fsyncs, and how many took over 1 ms and over 2 ms. */
interface FsyncCounts {
  total: number;
  over1Ms: number;
  over2Ms: number;
}

/**
 * vigie's histogram times the whole synced append (the record's write and its fdatasync), etcd's the fdatasync
 * alone; both have bucket bounds at 1 ms and 2 ms, which is all this reads.
 */
async function walFsyncCounts(target: Target): Promise<FsyncCounts> {
  const metric =
    target.label === "vigie" ? "vigie_disk_wal_fsync_duration_seconds" : "etcd_disk_wal_fsync_duration_seconds";
  const counts: FsyncCounts = { total: 0, over1Ms: 0, over2Ms: 0 };
  for (const member of target.members) {
    const text = await (await fetch(`${member.clientUrl}/metrics`)).text();
    const sample = (suffix: string) =>
      Number(new RegExp(`^${metric}${suffix} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
    const total = sample("_count");
    counts.total += total;
    counts.over1Ms += total - sample('_bucket\\{le="0.001"\\}');
    counts.over2Ms += total - sample('_bucket\\{le="0.002"\\}');
  }
  return counts;
}

/**
 * Snapshots the members have taken so far (vigie: of the whole key space, on the loop; etcd: its raft snapshot
 * file, the key space being on disk already). One that falls among timed rounds slows some of them.
 */
async function snapshotsTaken(target: Target): Promise<number> {
  const metric =
    target.label === "vigie"
      ? "vigie_server_snapshots_taken_total"
      : "etcd_debugging_snap_save_total_duration_seconds_count";
  let total = 0;
  for (const member of target.members) {
    const text = await (await fetch(`${member.clientUrl}/metrics`)).text();
    total += Number(new RegExp(`^${metric} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
  }
  return total;
}

/** Sequential puts on the leader. */
const latencyPhase: Phase = async (target, options, results) => {
  const leader = await leaderOf(target);
  const sequential = client([leader.clientUrl], 1);
  // Steady state is what counts: the first requests pay for JIT compilation (vigie) and connection set-up (both).
  const warmup: number[] = [];
  for (let i = 0; i < (options.quick ? 200 : WARMUP_PUTS); i++) {
    const started = performance.now();
    await sequential.put(`/warmup/${i}`, VALUE);
    warmup.push(performance.now() - started);
  }
  warmup.sort((a, b) => a - b);
  results.set("put latency p50 during warm-up (ms)", percentile(warmup, 50));
  results.set("put latency p99 during warm-up (ms)", percentile(warmup, 99));
  const latencies: number[] = [];
  const puts = options.quick ? 200 : SAMPLES_FOR_P99;
  // On 2 cores, three members and the client compete for the CPU during every put: the CPU each put costs the
  // members shows in the latency tail.
  const cpuBeforeMs = membersCpuMs(target);
  const waitBeforeMs = membersRunQueueWaitMs(target);
  const fsyncsBefore = await walFsyncCounts(target);
  for (let i = 0; i < puts; i++) {
    const started = performance.now();
    await sequential.put(`/seq/${i}`, VALUE);
    latencies.push(performance.now() - started);
  }
  const cpuAfterMs = membersCpuMs(target);
  const waitAfterMs = membersRunQueueWaitMs(target);
  const fsyncsAfter = await walFsyncCounts(target);
  latencies.sort((a, b) => a - b);
  results.set("put latency p50 (ms)", percentile(latencies, 50));
  results.set("put latency p99 (ms)", percentile(latencies, 99));
  results.set("CPU per sequential put, 3 members (ms)", (cpuAfterMs - cpuBeforeMs) / puts);
  results.set("wait for a core per sequential put, 3 members (ms)", (waitAfterMs - waitBeforeMs) / puts);
  // Where the tail comes from: on 2 cores a member that wakes from its fsync often waits for a core that the other
  // members and the client hold, and that wait counts in the fsync's time.
  const fsyncs = fsyncsAfter.total - fsyncsBefore.total;
  results.set(
    "WAL fsyncs over 1 ms, sequential puts (%)",
    (100 * (fsyncsAfter.over1Ms - fsyncsBefore.over1Ms)) / fsyncs,
  );
  results.set(
    "WAL fsyncs over 2 ms, sequential puts (%)",
    (100 * (fsyncsAfter.over2Ms - fsyncsBefore.over2Ms)) / fsyncs,
  );
};

/** 64 concurrent clients spread over every member (followers forward to the leader). */
const throughputPhase: Phase = async (target, options, results) => {
  const all = target.members.map((m) => m.clientUrl);
  const total = options.quick ? 3000 : 20_000;
  const workers = Array.from({ length: 64 }, (_, w) => client([all[w % all.length]!], 1));
  await throughput(640, workers, (c, i) => c.put(`/warmup/c/${i}`, VALUE));
  results.set("put throughput, 64 clients (/s)", await throughput(total, workers, (c, i) => c.put(`/c/${i}`, VALUE)));
  results.set(
    "linearizable range throughput, 64 clients (/s)",
    await throughput(total, workers, (c, i) => c.range(`/c/${i % 1000}`)),
  );
};

/**
 * put on the leader -> event on a follower's watch, on every target at once: the warm-up rounds and then the timed
 * ones alternate between the targets in blocks of WATCH_BLOCK_ROUNDS. A p99 is set by the slowest 1% of rounds,
 * and on this machine those come from stalls that do not belong to either program (a GC or a descheduled process
 * somewhere, an fsync that waits for another's): how often they come drifts over seconds. Timed one target after
 * the other, the two p99s were taken under different conditions (etcd's alone ranged from 2.1 to 5.6 ms over 11
 * runs); interleaved, both see the same drift. (The ratio still varied: 0.83-1.33x over 6 runs, README "Write
 * latency".) Alternating itself costs little: in a probe, vigie's rounds cost its members 2.14 ms of CPU after a
 * block of etcd's and 2.25 ms after a pause as long, with the same p50 and p99. What did weigh on vigie's timed
 * rounds was a snapshot in every member among them (the row "snapshots during the timed watch rounds" counts them):
 * its members' CPU per round read 2.9-4.4 ms with it, 1.51 ms in a run without. Since a large store snapshots by
 * the size of its log (src/store/node/snapshot-policy.ts), the members take theirs at entry 10,000, during the
 * throughput phase, and the next one ~50,000 entries later, after this phase.
 */
const watchPhase: JointPhase = {
  async joint(targets, options) {
    const sides = [];
    for (const [target, results] of targets) {
      const leader = await leaderOf(target);
      const follower = target.members.find((m) => m !== leader)!;
      const stream = client([follower.clientUrl], 1).watch("/watch/key");
      const events = stream[Symbol.asyncIterator]();
      await events.next(); // created
      const writer = client([leader.clientUrl], 1);
      const round = async (value: string): Promise<number> => {
        const started = performance.now();
        const event = events.next();
        await writer.put("/watch/key", value);
        await event;
        return performance.now() - started;
      };
      const latencies: number[] = [];
      sides.push({ target, stream, round, results, latencies, runMs: 0, waitMs: 0, othersCpuMs: 0, snapshots: 0 });
    }
    // The warm-up alternates too: done for one target and then the other, the first one idled through the
    // second's (~8 s), long enough for its idle collection, and started its timed rounds cold (README, "After idle").
    const warmups = options.quick ? 50 : WARMUP_WATCH_ROUNDS;
    for (let done = 0; done < warmups; done += WATCH_BLOCK_ROUNDS) {
      for (const side of sides) {
        for (let i = done; i < Math.min(warmups, done + WATCH_BLOCK_ROUNDS); i++) await side.round(`warm-up ${i}`);
      }
    }
    const samples = options.quick ? 100 : SAMPLES_FOR_P99;
    for (let done = 0; done < samples; done += WATCH_BLOCK_ROUNDS) {
      for (const side of sides) {
        const others = sides.filter((other) => other !== side);
        const snapshotsBefore = await snapshotsTaken(side.target);
        const waitBeforeMs = membersRunQueueWaitMs(side.target);
        const runBeforeMs = membersRunMs(side.target);
        const othersCpuBeforeMs = others.reduce((sum, other) => sum + membersRunMs(other.target), 0);
        for (let i = done; i < Math.min(samples, done + WATCH_BLOCK_ROUNDS); i++) {
          side.latencies.push(await side.round(String(i)));
        }
        side.waitMs += membersRunQueueWaitMs(side.target) - waitBeforeMs;
        side.snapshots += (await snapshotsTaken(side.target)) - snapshotsBefore;
        side.runMs += membersRunMs(side.target) - runBeforeMs;
        side.othersCpuMs += others.reduce((sum, other) => sum + membersRunMs(other.target), 0) - othersCpuBeforeMs;
      }
    }
    for (const { stream, results, latencies, runMs, waitMs, othersCpuMs, snapshots } of sides) {
      stream.cancel();
      latencies.sort((a, b) => a - b);
      results.set("put -> watch event on a follower p50 (ms)", percentile(latencies, 50));
      results.set("put -> watch event on a follower p99 (ms)", percentile(latencies, 99));
      results.set("CPU per watch round, 3 members (ms)", runMs / latencies.length);
      results.set("wait for a core per watch round, 3 members (ms)", waitMs / latencies.length);
      results.set("snapshots during the timed watch rounds, 3 members", snapshots);
      // The other cluster is idle meanwhile, but not asleep (heartbeats, deferred disk writes, GC): what it takes
      // from the 2 cores during this one's rounds.
      if (sides.length > 1) {
        results.set("CPU of the other cluster per watch round (ms)", othersCpuMs / latencies.length);
      }
    }
    const [first, second] = sides;
    if (first !== undefined && second !== undefined) {
      const [low, high] = bootstrapRatioInterval(first.latencies, second.latencies, 99);
      const ratio = percentile(first.latencies, 99) / percentile(second.latencies, 99);
      notes.push(
        `put -> watch event p99, ${first.target.label}/${second.target.label}: ${ratio.toFixed(2)}x; ` +
          `90% of ${BOOTSTRAP_RESAMPLES} bootstrap resamples of the rounds between ${low.toFixed(2)}x and ` +
          `${high.toFixed(2)}x (the p99 is the ${Math.ceil(first.latencies.length / 100)}th slowest round: ` +
          "this is the noise of that alone, not the machine's drift between runs)",
      );
    }
  },
};

/**
 * Memory again after the load phases, with every key still held: what serving puts, ranges and watches made
 * resident that the memory phase did not see (for vigie, also whether the linker tables it dropped came back).
 */
const memoryAfterLoadPhase: Phase = async (target, _options, results) => {
  await new Promise((r) => setTimeout(r, 500));
  recordRss(target, results, "after the load phases", true);
};

/** kill -9 of the leader while a client writes to a survivor: time until a write succeeds again. */
const failoverPhase: Phase = async (target, _options, results) => {
  const leader = await leaderOf(target);
  const survivor = client(
    target.members.filter((m) => m !== leader).map((f) => f.clientUrl),
    1,
  );
  await survivor.put("/unavail/warmup", "x");
  const killedAt = performance.now();
  await leader.kill();
  let unavailableMs = Number.NaN;
  for (let i = 0; performance.now() - killedAt < 20_000; i++) {
    try {
      await survivor.put(`/unavail/${i}`, "x");
      unavailableMs = performance.now() - killedAt;
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  results.set("unavailability after leader kill -9 (ms)", unavailableMs);
};

/** In this order; each phase runs on vigie then at once on etcd (or on both together), so both see the same load. */
const PHASES: Array<Phase | JointPhase> = [
  memoryPhase,
  latencyPhase,
  throughputPhase,
  watchPhase,
  memoryAfterLoadPhase,
  failoverPhase,
];

async function throughput(
  total: number,
  workers: StoreClient[],
  op: (c: StoreClient, i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    workers.map(async (c) => {
      while (next < total) await op(c, next++);
    }),
  );
  return (total * 1000) / (performance.now() - started);
}

async function startVigie(): Promise<Target> {
  const fixture = await ClusterFixture.create("bench-cluster");
  const agents = await fixture.startStatic(["a1", "a2", "a3"]);
  return {
    label: "vigie",
    members: agents.map((a) => ({
      name: a.name,
      clientUrl: a.clientUrl,
      pid: () => a.pid,
      kill: () => a.kill("SIGKILL"),
    })),
    close: () => fixture.cleanup(),
  };
}

async function startEtcd(binary: string): Promise<Target> {
  const root = await mkdtemp(join(tmpdir(), "vigie-bench-etcd-"));
  const members: EtcdMember[] = await startEtcdCluster(binary, root, 3);
  return {
    label: "etcd",
    members: members.map((m) => ({ name: m.name, clientUrl: m.clientUrl, pid: () => m.pid, kill: () => m.kill() })),
    async close() {
      await Promise.all(members.map((m) => m.kill()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

const TARGETS: Record<string, { lowerIsBetter: boolean; ratioTarget?: string; absolute?: string }> = {
  "RSS idle, no keys (MB)": { lowerIsBetter: true },
  "RSS with 10,000 keys (MB)": { lowerIsBetter: true, absolute: "<= 64 MB" },
  "RSS with 10,000 keys: file-backed part (MB)": { lowerIsBetter: true },
  "RSS with 100,000 keys (MB)": { lowerIsBetter: true, absolute: "<= 160 MB" },
  "put latency p50 during warm-up (ms)": { lowerIsBetter: true },
  "put latency p99 during warm-up (ms)": { lowerIsBetter: true },
  "put latency p50 (ms)": { lowerIsBetter: true, ratioTarget: "<= 1.0x" },
  "put latency p99 (ms)": { lowerIsBetter: true },
  "CPU per sequential put, 3 members (ms)": { lowerIsBetter: true },
  "WAL fsyncs over 1 ms, sequential puts (%)": { lowerIsBetter: true },
  "WAL fsyncs over 2 ms, sequential puts (%)": { lowerIsBetter: true },
  "put throughput, 64 clients (/s)": { lowerIsBetter: false, ratioTarget: ">= 1.0x" },
  "linearizable range throughput, 64 clients (/s)": { lowerIsBetter: false },
  "put -> watch event on a follower p50 (ms)": { lowerIsBetter: true },
  "put -> watch event on a follower p99 (ms)": { lowerIsBetter: true, ratioTarget: "<= 1.0x" },
  "RSS after the load phases (MB)": { lowerIsBetter: true },
  "RSS after the load phases: file-backed part (MB)": { lowerIsBetter: true },
  "unavailability after leader kill -9 (ms)": { lowerIsBetter: true, ratioTarget: "<= 0.5x" },
};

function format(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return "-";
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(2);
}

const benchmark: Benchmark = {
  name: "cluster",
  description: "3-member vigie vs 3-member etcd 3.4 on loopback: latency, throughput, watch, failover, memory",
  async run(options) {
    const vigie: Results = new Map();
    const etcd: Results = new Map();
    const etcdBinary = options.etcd ? findExecutable("etcd") : undefined;
    if (options.etcd && etcdBinary === undefined) console.log("etcd is not installed: printing vigie's numbers only");
    const targets: Array<[Target, Results]> = [];
    try {
      targets.push([await startVigie(), vigie]);
      if (etcdBinary !== undefined) targets.push([await startEtcd(etcdBinary), etcd]);
      for (const phase of PHASES) {
        if (typeof phase !== "function") await phase.joint(targets, options);
        else for (const [target, results] of targets) await phase(target, options, results);
      }
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await Promise.all(targets.map(([target]) => target.close()));
    }
    const rows = [...vigie.keys()].map((measureName) => {
      const v = vigie.get(measureName);
      const e = etcd.get(measureName);
      const target = TARGETS[measureName];
      const ratio = v !== undefined && e !== undefined && e > 0 ? v / e : Number.NaN;
      return {
        measure: measureName,
        vigie: format(v),
        etcd: format(e),
        "vigie/etcd": Number.isNaN(ratio) ? "-" : `${ratio.toFixed(2)}x`,
        target: target?.ratioTarget ?? target?.absolute ?? "",
      };
    });
    console.table(rows);
    for (const note of notes.splice(0)) console.log(note);
  },
};

export default benchmark;
