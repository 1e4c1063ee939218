// `npm run sim -- --seeds N [--seed S] [--steps K] [--trace] [--verbose]`: runs the deterministic Raft simulator
// for seeds S..S+N-1 and prints what each run exercised. A failure prints the seed and the exact replay command;
// a replay prints the same trace hash (the same run, byte for byte).
import { setFlagsFromString } from "node:v8";
import { describeProfile } from "../src/sim/faults.js";
import { runSimulation, type SimResult, type SimStats } from "../src/sim/simulation.js";
import { parseScriptOptions, type ScriptUsage, usageError } from "./script-options.js";

// The simulator allocates many short-lived objects (messages, entries): a larger young generation means fewer
// scavenges. Allowed to grow at run time; it changes speed only, never a run's outcome.
setFlagsFromString("--max-semi-space-size=32");

export const DEFAULT_STEPS = 3000;

const SCRIPT: ScriptUsage = {
  name: "sim",
  usage: "usage: npm run sim -- --seeds N [--seed S] [--steps K] [--trace] [--verbose]",
  help:
    `Runs the deterministic Raft simulator for seeds S..S+N-1 (S defaults to 1, N to 1, K to ${DEFAULT_STEPS}); ` +
    "--trace prints every event of each run, --verbose a line and a fault profile per seed.",
};

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0)
    usageError(SCRIPT, `--${name} must be a non-negative integer, got "${text}"`);
  return value;
}

const values = parseScriptOptions(SCRIPT, {
  seeds: { type: "string" },
  seed: { type: "string" },
  steps: { type: "string" },
  trace: { type: "boolean", default: false },
  verbose: { type: "boolean", default: false },
});

const firstSeed = positiveInt("seed", values.seed, 1);
const seedCount = positiveInt("seeds", values.seeds, 1);
const steps = positiveInt("steps", values.steps, DEFAULT_STEPS);
if (seedCount < 1) usageError(SCRIPT, "--seeds must be at least 1");
const perRun = values.verbose || seedCount <= 20;

function line(r: SimResult, cpuSeconds: number): string {
  const s = r.stats;
  return (
    `seed ${r.seed} ${r.ok ? "ok" : "FAILED"} hash=${r.traceHash} ticks=${s.ticks} ` +
    `ticks/s=${Math.round(s.ticks / Math.max(cpuSeconds, 1e-6))} elections=${s.elections} ` +
    `leaders=${s.leadersElected} preVoteRejections=${s.preVoteRejections} snapshotsSent=${s.snapshotsSent} ` +
    `snapshotsInstalled=${s.snapshotsInstalled} membershipChanges=${s.membershipChanges} transfers=${s.transfers} ` +
    `readsServed=${s.readsServed} crashes=${s.crashes} partitions=${s.partitions} pauses=${s.pauses} ` +
    `msgs=${s.messages} lost=${s.messagesLost} ops=${s.opsOk}ok/${s.opsUnknown}unknown/${s.opsRefused}refused ` +
    `history=${s.historyOps} healTicks=${s.healTicks}`
  );
}

const totals: Record<string, number> = {};
const failures: SimResult[] = [];
const started = performance.now();
// CPU time of this process: other work on a shared machine does not distort ticks per second "on one core".
const cpuStarted = process.cpuUsage();
for (let seed = firstSeed; seed < firstSeed + seedCount; seed++) {
  const trace = values.trace ? (text: string) => console.log(`  ${text}`) : undefined;
  const runCpuStarted = process.cpuUsage();
  const result = runSimulation({ seed, steps, ...(trace ? { trace } : {}) });
  const runCpu = process.cpuUsage(runCpuStarted);
  const runCpuSeconds = (runCpu.user + runCpu.system) / 1e6;
  for (const [key, value] of Object.entries(result.stats) as [keyof SimStats, number][]) {
    totals[key] = (totals[key] ?? 0) + value;
  }
  if (perRun || !result.ok) {
    console.log(line(result, runCpuSeconds));
    if (values.verbose || !result.ok) console.log(`  profile: ${describeProfile(result.profile)}`);
  }
  if (!result.ok) {
    failures.push(result);
    console.log(`  failure: ${result.failure}`);
    console.log(`  replay: npm run sim -- --seed ${seed} --seeds 1 --steps ${steps} --trace`);
  }
  const done = seed - firstSeed + 1;
  if (!perRun && done % 250 === 0) {
    const cpu = process.cpuUsage(cpuStarted);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    console.log(
      `  ... ${done}/${seedCount} seeds, ${failures.length} failed, ${Math.round(totals.ticks! / cpuSeconds)} ticks/s (CPU)`,
    );
  }
}
const seconds = (performance.now() - started) / 1000;
const cpuUsed = process.cpuUsage(cpuStarted);
const cpuSeconds = (cpuUsed.user + cpuUsed.system) / 1e6;
const t = (key: string) => totals[key] ?? 0;
console.log(
  `\n${seedCount - failures.length}/${seedCount} seeds passed (steps ${steps}) in ${seconds.toFixed(1)} s\n` +
    `simulated ticks: ${t("ticks")} in ${cpuSeconds.toFixed(1)} CPU s: ${Math.round(t("ticks") / cpuSeconds)} ticks/s ` +
    `on one core (${Math.round(t("nodeTicks") / cpuSeconds)} node-ticks/s, ${Math.round(t("messages") / cpuSeconds)} ` +
    `messages/s; wall clock ${Math.round(t("ticks") / seconds)} ticks/s)\n` +
    `elections ${t("elections")}, leaders ${t("leadersElected")}, pre-votes ${t("preVotes")}, ` +
    `pre-vote rejections ${t("preVoteRejections")}, snapshots sent ${t("snapshotsSent")} ` +
    `(installed ${t("snapshotsInstalled")}), membership changes ${t("membershipChanges")}, ` +
    `transfers ${t("transfers")}, reads served ${t("readsServed")}\n` +
    `crashes ${t("crashes")}, partitions ${t("partitions")}, pauses ${t("pauses")}, messages ${t("messages")} ` +
    `(lost ${t("messagesLost")}), client ops ok ${t("opsOk")}, unknown ${t("opsUnknown")}, ` +
    `refused ${t("opsRefused")}, checked history ops ${t("historyOps")}`,
);
if (failures.length > 0) {
  console.log(`failed seeds: ${failures.map((f) => f.seed).join(", ")}`);
  process.exit(1);
}
