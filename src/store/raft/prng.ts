// A small seeded PRNG (SplitMix32-style mixing over a 32-bit counter) so that elections and simulations are
// reproducible from one integer seed. Not for cryptography.
import type { Random } from "./types.js";

/** Returns a function yielding uniform floats in [0, 1), fully determined by `seed` (any safe integer). */
export function createPrng(seed: number): Random {
  let state = (seed ^ 0x9e3779b9) >>> 0;
  // Mix the high bits of large seeds in too, so seeds differing only above 2^32 give different streams.
  state = (state + Math.floor(seed / 0x100000000)) >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 0x100000000;
  };
}

/** A uniform integer in [0, bound). */
export function randomInt(random: Random, bound: number): number {
  return Math.floor(random() * bound);
}
