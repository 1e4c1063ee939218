// `npm run bench [-- --only NAME[,NAME]] [--quick] [--no-etcd]`: runs every benchmark module in scripts/bench/ in turn.
// Each module prints its own table; this file only finds and runs them, so areas add benchmarks without touching it.
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

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

const USAGE = "usage: npm run bench [-- --only NAME[,NAME]] [--quick] [--no-etcd]";

function usage(message: string): never {
  console.error(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

function parseOptions() {
  try {
    return parseArgs({
      options: {
        only: { type: "string" },
        quick: { type: "boolean", default: false },
        "no-etcd": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (error) {
    // node's message names the option ("Unknown option '--onl'"); its stack trace says nothing more.
    usage((error as Error).message);
  }
}

const values = parseOptions();
const directory = join(dirname(fileURLToPath(import.meta.url)), "bench");
const benchmarks: Benchmark[] = [];
for (const file of (await readdir(directory)).filter((f) => f.endsWith(".ts")).sort()) {
  benchmarks.push(((await import(pathToFileURL(join(directory, file)).href)) as { default: Benchmark }).default);
}
const names = benchmarks.map((b) => b.name);
if (values.help) {
  console.log(`${USAGE}\nbenchmarks:\n${benchmarks.map((b) => `  ${b.name}: ${b.description}`).join("\n")}`);
  process.exit(0);
}
const only = values.only?.split(",");
// A misspelt name ran nothing and printed nothing.
const unknown = only?.filter((name) => !names.includes(name)) ?? [];
if (unknown.length > 0) usage(`--only: no benchmark named ${unknown.join(", ")} (there are: ${names.join(", ")})`);
for (const bench of benchmarks) {
  if (only && !only.includes(bench.name)) continue;
  console.log(`\n== ${bench.name}: ${bench.description}`);
  await bench.run({ etcd: !values["no-etcd"], quick: values.quick });
}
