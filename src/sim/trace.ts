// A running hash of what happened in a run (deliveries, applications, ticks). Two runs with the same seed must
// print the same hash: that is how "replay is byte-for-byte the same run" is checked cheaply.

export class RunTrace {
  private h1 = 0x811c9dc5;
  private h2 = 0x01000193;

  /** Mixes four small integers into the hash (two independent 32-bit lanes, FNV/Murmur-style). */
  mix(a: number, b: number, c: number, d: number): void {
    this.h1 = Math.imul(this.h1 ^ a, 0x01000193);
    this.h1 = Math.imul(this.h1 ^ b, 0x01000193);
    this.h2 = Math.imul(this.h2 ^ c, 0x5bd1e995);
    this.h2 = Math.imul(this.h2 ^ d, 0x5bd1e995);
    this.h2 ^= this.h1 >>> 15;
  }

  hex(): string {
    return (this.h1 >>> 0).toString(16).padStart(8, "0") + (this.h2 >>> 0).toString(16).padStart(8, "0");
  }
}
