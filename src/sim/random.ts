// Seeded randomness for the simulator: one stream per purpose, all derived from the run's seed, so a run is a
// pure function of its seed and replays byte for byte.
import { createPrng, type Random } from "../store/raft/index.js";

export class SimRandom {
  readonly next: Random;

  constructor(seed: number) {
    this.next = createPrng(seed);
  }

  /** A child stream for one purpose (derived, so adding draws elsewhere does not shift it). */
  fork(label: number): SimRandom {
    return new SimRandom(Math.floor(this.next() * 0x7fffffff) ^ Math.imul(label, 0x27d4eb2d));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  int(bound: number): number {
    return Math.floor(this.next() * bound);
  }

  intBetween(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("sim: pick from an empty list");
    return items[Math.floor(this.next() * items.length)]!;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}
