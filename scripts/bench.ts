// `npm run bench [-- --only NAME[,NAME]] [-- --etcd]`: runs every benchmark module in scripts/bench/ in turn.
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

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    quick: { type: "boolean", default: false },
    "no-etcd": { type: "boolean", default: false },
  },
});

const directory = join(dirname(fileURLToPath(import.meta.url)), "bench");
const files = (await readdir(directory)).filter((f) => f.endsWith(".ts")).sort();
const only = values.only?.split(",");
for (const file of files) {
  const module = (await import(pathToFileURL(join(directory, file)).href)) as { default: Benchmark };
  const bench = module.default;
  if (only && !only.includes(bench.name)) continue;
  console.log(`\n== ${bench.name}: ${bench.description}`);
  await bench.run({ etcd: !values["no-etcd"], quick: values.quick });
}
