// Differential test of the streaming `/v3/watch` API: random scenarios (history writes, one watch stream with up
// to 4 request messages of every kind, live writes: puts, deletes, txns, lease revokes, compactions) run against a
// real etcd 3.4 and a real `vigie agent --dev` side by side, and everything each answers must be equal once
// normalised (differential-watch-runner.ts): the writes' answers, the stream's status, every message per watch id
// (created/canceled, compact_revision, cancel_reason, events with their kv and prev_kv, how events are grouped
// into messages, header revisions) and whether the stream ended.
//
// CI runs a fixed seed and number of runs (deterministic, ~35 s here). To explore more:
//   VIGIE_DIFF_SEED=123 VIGIE_DIFF_RUNS=300 node --import tsx test/integration/differential-watch.test.ts
// (needs `npm run build`). Not covered, because etcd's behaviour there is not observable in a test: progress
// notifications (every 10 minutes in etcd), messages sent after the stream's first answer (see the scenario file),
// and fragmentation (needs responses above 1.5 MiB: see the check in api-suite-watch-edges.ts).
import { isDeepStrictEqual } from "node:util";
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type Observation, runNames, runScenario, streamChunk } from "../helpers/differential-watch-runner.js";
import { type Scenario, scenarioArbitrary } from "../helpers/differential-watch-scenario.js";
import { startEtcd } from "../helpers/etcd.js";
import { requireTools } from "../helpers/require-tool.js";
import { startDevAgent } from "../helpers/vigie-agent.js";

const DEFAULT_SEED = 20_261_126;
const DEFAULT_RUNS = 40;
/** The stream's messages go out in one write; keep it well inside what etcd's gateway reads in one go. */
const MAX_CHUNK_CHARS = 1_500;

function envInteger(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`${name}=${text}: expected an integer`);
  return value;
}

const seed = envInteger("VIGIE_DIFF_SEED", DEFAULT_SEED);
const numRuns = envInteger("VIGIE_DIFF_RUNS", DEFAULT_RUNS);
const replayPath = process.env.VIGIE_DIFF_PATH;

const scenarios = scenarioArbitrary.filter(
  (scenario) => streamChunk(scenario.messages, runNames(99_999), 999_999_999).length <= MAX_CHUNK_CHARS,
);

/** The fields of two observations that differ, for the failure report. */
function differences(etcd: Observation, vigie: Observation): string[] {
  const out: string[] = [];
  for (const field of ["status", "ended", "writes", "otherLines"] as const) {
    if (!isDeepStrictEqual(etcd[field], vigie[field])) out.push(field);
  }
  const ids = new Set([...Object.keys(etcd.byWatchId), ...Object.keys(vigie.byWatchId)]);
  for (const id of ids) {
    if (!isDeepStrictEqual(etcd.byWatchId[id], vigie.byWatchId[id])) out.push(`watch id ${id}`);
  }
  return out;
}

function show(value: unknown): string {
  return JSON.stringify(value, null, 1).replace(/\n\s*/g, " ");
}

test("watch streams: vigie answers random scenarios exactly like etcd 3.4", async () => {
  if (requireTools("differential-watch", "etcd") === undefined) return;
  const etcd = await startEtcd({ name: "diff-watch" });
  const vigie = await startDevAgent().catch(async (error: unknown) => {
    await etcd.stop();
    throw error;
  });
  let runIndex = 0;
  type Failure = { scenario: Scenario; run: number; etcd: Observation; vigie: Observation };
  let firstFailure: Failure | undefined;
  let lastFailure: Failure | undefined;
  const started = Date.now();
  try {
    const property = fc.asyncProperty(scenarios, async (scenario) => {
      const run = runIndex++;
      const names = runNames(run);
      const [fromEtcd, fromVigie] = await Promise.all([
        runScenario(etcd.clientUrl, scenario, names),
        runScenario(vigie.url, scenario, names),
      ]);
      if (isDeepStrictEqual(fromEtcd, fromVigie)) return true;
      lastFailure = { scenario, run, etcd: fromEtcd, vigie: fromVigie };
      firstFailure ??= lastFailure;
      return false;
    });
    const details = await fc.check(property, { seed, numRuns, ...(replayPath ? { path: replayPath } : {}) });
    console.log(`differential-watch: ${details.numRuns} runs, seed ${seed}, ${Date.now() - started} ms`);
    if (details.failed) {
      const failure = lastFailure;
      const report = [
        `etcd and vigie differ (seed ${seed}, path ${details.counterexamplePath}, after ${details.numShrinks} shrinks)`,
        details.errorInstance === undefined || details.errorInstance === null
          ? ""
          : `error: ${String(details.errorInstance)}`,
        `scenario: ${JSON.stringify(details.counterexample?.[0])}`,
      ];
      if (firstFailure !== undefined && firstFailure !== failure) {
        // Shrinking runs on the stores the failing run left behind: the original difference can matter.
        report.push(
          `first failing run ${firstFailure.run}, before shrinking: ${JSON.stringify(firstFailure.scenario)}`,
          `  differs in: ${differences(firstFailure.etcd, firstFailure.vigie).join(", ")}`,
          `  etcd : ${show(firstFailure.etcd)}`,
          `  vigie: ${show(firstFailure.vigie)}`,
        );
      }
      if (failure !== undefined) {
        report.push(
          `run ${failure.run}: keys under ${runNames(failure.run).prefix}; revisions relative to the run's first`,
          `differs in: ${differences(failure.etcd, failure.vigie).join(", ")}`,
          `stream request body: ${streamChunk(failure.scenario.messages, runNames(failure.run), 0)}`,
          `etcd : ${show(failure.etcd)}`,
          `vigie: ${show(failure.vigie)}`,
        );
      }
      report.push(
        "replay (after `npm run build`):",
        `  VIGIE_DIFF_SEED=${seed} VIGIE_DIFF_PATH=${details.counterexamplePath} node --import tsx test/integration/differential-watch.test.ts`,
        `  or the whole sequence: VIGIE_DIFF_SEED=${seed} VIGIE_DIFF_RUNS=${numRuns} node --import tsx test/integration/differential-watch.test.ts`,
      );
      console.error(report.filter((line) => line !== "").join("\n"));
      assert.unreachable(`etcd and vigie differ: see the report above (seed ${seed})`);
    }
  } finally {
    await Promise.all([etcd.stop(), vigie.stop()]);
  }
});

test.run();
