// Differential test of the unary KV / txn / compaction / lease gateway: random operation sequences are sent to a
// real etcd 3.4 and to `vigie agent --dev`, and every answer must match (status and JSON, after normalising ids,
// revisions and lease ids: see test/helpers/differential-run.ts). The field-by-field compatibility suite checks
// what we thought of; this finds what we did not.
//
// Deterministic by default (fixed seed and run count, well under a minute). To explore:
//   VIGIE_DIFF_SEED=123 VIGIE_DIFF_RUNS=500 node --import tsx test/integration/differential-kv.test.ts
// A failure prints the seed, the shrunk sequence, both requests and answers, and the command that replays it.
import fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { ApiTarget } from "../helpers/api-suite.js";
import type { Op } from "../helpers/differential-ops.js";
import { sequenceArbitrary } from "../helpers/differential-ops.js";
import {
  type AnswerCounts,
  type Discrepancy,
  describeDiscrepancy,
  runSequence,
  type Targets,
} from "../helpers/differential-run.js";
import { type EtcdProcess, startEtcd } from "../helpers/etcd.js";
import { requireTools } from "../helpers/require-tool.js";
import { startDevAgent } from "../helpers/vigie-agent.js";

const DEFAULT_SEED = 20261126;
const DEFAULT_RUNS = 200;
const seed = Number(process.env.VIGIE_DIFF_SEED ?? DEFAULT_SEED);
const numRuns = Number(process.env.VIGIE_DIFF_RUNS ?? DEFAULT_RUNS);
const replayPath = process.env.VIGIE_DIFF_PATH;

let etcd: EtcdProcess | undefined;
let vigie: ApiTarget | undefined;
/** Every execution (shrinking included) writes under a fresh prefix that sorts after all earlier ones. */
let runCounter = 0;

const counts: AnswerCounts = new Map();

async function execute(targets: Targets, ops: readonly Op[]): Promise<Discrepancy | undefined> {
  runCounter++;
  const prefix = `/diff/${String(runCounter).padStart(6, "0")}/`;
  return await runSequence(targets, ops, prefix, 1_000_000 + runCounter * 10, counts);
}

/** "txn 200: 412, txn 400: 37, ..." (etcd's statuses): what the runs exercised. */
function describeCounts(): string {
  return [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([what, n]) => `${what.replace(/^\/v3\//, "")}: ${n}`)
    .join(", ");
}

// The targets start inside the test, not in a before hook: uvu 0.5 swallows an error thrown by a hook, so a
// missing etcd under VIGIE_REQUIRE_INTEGRATION=1 (requireTools throws) or an agent that fails to start would
// leave the file "passing" with nothing run.
test.after(async () => {
  await vigie?.stop();
  await etcd?.stop();
});

test("random KV/txn/compaction/lease sequences: vigie answers exactly like etcd 3.4", async () => {
  if (requireTools("differential-kv", "etcd") === undefined) return;
  etcd = await startEtcd({ name: "differential" });
  vigie = await startDevAgent();
  const targets: Targets = { etcd: etcd.clientUrl, vigie: vigie.url };
  const property = fc.asyncProperty(sequenceArbitrary, async (ops) => {
    const found = await execute(targets, ops);
    if (found !== undefined) throw new Error(describeDiscrepancy(found));
  });
  const started = Date.now();
  const details = await fc.check(property, {
    seed,
    numRuns,
    ...(replayPath === undefined ? {} : { path: replayPath }),
  });
  console.log(`differential-kv: ${details.numRuns} runs (seed ${seed}) in ${Date.now() - started} ms`);
  console.log(`differential-kv: answers by path and status: ${describeCounts()}`);
  if (!details.failed) return;
  const ops = details.counterexample?.[0] ?? [];
  // Replay the shrunk sequence once more on fresh prefixes: its report is the one printed.
  const again = await execute(targets, ops);
  const replay = `VIGIE_DIFF_SEED=${seed} VIGIE_DIFF_PATH=${details.counterexamplePath} node --import tsx test/integration/differential-kv.test.ts`;
  const report = [
    `vigie differs from etcd 3.4 (seed ${seed}, path ${details.counterexamplePath}, ${details.numShrinks} shrinks)`,
    `shrunk sequence: ${JSON.stringify(ops)}`,
    again === undefined
      ? `(did not fail on replay; first failure: ${String(details.errorInstance)})`
      : describeDiscrepancy(again),
    `replay: ${replay}`,
  ].join("\n");
  console.error(report);
  assert.unreachable(report);
});

test.run();
