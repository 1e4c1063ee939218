// `npm run bench -- --only raft-sim`: throughput of the deterministic Raft simulator (simulated ticks per second
// on one core) over a fixed batch of seeds, plus what the batch exercised.
import { runSimulation, type SimStats } from "../../src/sim/simulation.js";
import type { Benchmark, BenchOptions } from "../bench.js";

const benchmark: Benchmark = {
  name: "raft-sim",
  description: "deterministic Raft simulator: simulated ticks/s on one core over a fixed batch of seeds",
  async run(options: BenchOptions): Promise<void> {
    const seeds = options.quick ? 100 : 1000;
    const steps = 3000;
    const totals: Partial<Record<keyof SimStats, number>> = {};
    const wallStarted = performance.now();
    const cpuStarted = process.cpuUsage();
    let failed = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const result = runSimulation({ seed, steps });
      if (!result.ok) failed++;
      for (const [key, value] of Object.entries(result.stats) as [keyof SimStats, number][]) {
        totals[key] = (totals[key] ?? 0) + value;
      }
    }
    const wallSeconds = (performance.now() - wallStarted) / 1000;
    const cpu = process.cpuUsage(cpuStarted);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const ticks = totals.ticks ?? 0;
    console.table([
      {
        seeds,
        steps,
        failed,
        "simulated ticks": ticks,
        "ticks/s (wall)": Math.round(ticks / wallSeconds),
        "ticks/s (CPU)": Math.round(ticks / cpuSeconds),
        "node-ticks/s (wall)": Math.round((totals.nodeTicks ?? 0) / wallSeconds),
        "messages/s (wall)": Math.round((totals.messages ?? 0) / wallSeconds),
        "client ops ok": totals.opsOk ?? 0,
        elections: totals.elections ?? 0,
        "snapshots sent": totals.snapshotsSent ?? 0,
      },
    ]);
  },
};

export default benchmark;
