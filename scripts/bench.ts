// `npm run bench [-- --only NAME[,NAME]] [--quick] [--no-etcd]`: runs every benchmark module in scripts/bench/ in turn.
// Each module prints its own table; this file only finds and runs them, so areas add benchmarks without touching it.
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseScriptOptions, type ScriptUsage, usageError } from "./script-options.js";

/** What a file in scripts/bench/ exports as `default`. */
export interface Benchmark {
  name: string;
  description: string;
  run(options: BenchOptions): Promise<void>;
}

export interface BenchOptions {
  /** Also run the same workload against a real etcd when the benchmark supports it (default: when etcd is installed). */
  etcd: boolean;
  /** Smaller workloads, for a smoke run. */
  quick: boolean;
}

const directory = join(dirname(fileURLToPath(import.meta.url)), "bench");
const benchmarks: Benchmark[] = [];
for (const file of (await readdir(directory)).filter((f) => f.endsWith(".ts")).sort()) {
  benchmarks.push(((await import(pathToFileURL(join(directory, file)).href)) as { default: Benchmark }).default);
}
const names = benchmarks.map((b) => b.name);
const SCRIPT: ScriptUsage = {
  name: "bench",
  usage: "usage: npm run bench [-- --only NAME[,NAME]] [--quick] [--no-etcd]",
  help: `benchmarks:\n${benchmarks.map((b) => `  ${b.name}: ${b.description}`).join("\n")}`,
};
const values = parseScriptOptions(SCRIPT, {
  only: { type: "string" },
  quick: { type: "boolean", default: false },
  "no-etcd": { type: "boolean", default: false },
});
const only = values.only?.split(",");
// A misspelt name ran nothing and printed nothing.
const unknown = only?.filter((name) => !names.includes(name)) ?? [];
if (unknown.length > 0)
  usageError(SCRIPT, `--only: no benchmark named ${unknown.join(", ")} (there are: ${names.join(", ")})`);
for (const bench of benchmarks) {
  if (only && !only.includes(bench.name)) continue;
  console.log(`\n== ${bench.name}: ${bench.description}`);
  await bench.run({ etcd: !values["no-etcd"], quick: values.quick });
}
