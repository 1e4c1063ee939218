// The simulated network: every message gets a delivery time (delay in ticks, which also reorders), may be lost or
// duplicated, and is dropped at delivery if a partition (symmetric or one-way) separates its ends by then.
// In-flight messages are bounded; beyond the bound new messages are lost, as a full socket buffer would.
import type { Message, NodeId } from "../store/raft/index.js";
import type { SimRandom } from "./random.js";

export interface NetworkFaults {
  lossRate: number;
  duplicateRate: number;
  minDelayTicks: number;
  maxDelayTicks: number;
}

export const MAX_IN_FLIGHT_MESSAGES = 20_000;
const HEALTHY: NetworkFaults = { lossRate: 0, duplicateRate: 0, minDelayTicks: 1, maxDelayTicks: 1 };

export class SimNetwork {
  /** Ring of buckets: buckets[t % size] holds messages due at tick t. */
  private buckets: Message[][];
  private inFlight = 0;
  /** Directed links that drop everything: key from * 1024 + to. */
  private blocked = new Set<number>();
  faults: NetworkFaults;
  healthy = false;
  sent = 0;
  lost = 0;
  duplicated = 0;

  constructor(
    private readonly random: SimRandom,
    faults: NetworkFaults,
    /** Told about every message the network loses (the transport of a real driver would notice some). */
    private readonly onLost: (m: Message) => void,
    private readonly maxDelayBound = 256,
  ) {
    this.faults = faults;
    this.buckets = Array.from({ length: maxDelayBound + 1 }, () => []);
  }

  send(m: Message, now: number): void {
    this.sent++;
    const f = this.healthy ? HEALTHY : this.faults;
    if (f.lossRate > 0 && this.random.chance(f.lossRate)) {
      this.lose(m);
      return;
    }
    this.enqueue(m, now, f);
    if (f.duplicateRate > 0 && this.random.chance(f.duplicateRate)) {
      this.duplicated++;
      this.enqueue(m, now, f);
    }
  }

  private enqueue(m: Message, now: number, f: NetworkFaults): void {
    if (this.inFlight >= MAX_IN_FLIGHT_MESSAGES) {
      this.lose(m);
      return;
    }
    const delay = Math.min(this.maxDelayBound, this.random.intBetween(f.minDelayTicks, f.maxDelayTicks));
    this.buckets[(now + Math.max(1, delay)) % this.buckets.length]!.push(m);
    this.inFlight++;
  }

  /** Messages due at `now` whose link is open; messages on a blocked link are lost. */
  takeDue(now: number): Message[] {
    const index = now % this.buckets.length;
    const due = this.buckets[index]!;
    if (due.length === 0) return due;
    this.buckets[index] = [];
    this.inFlight -= due.length;
    if (this.blocked.size === 0) return due;
    const open: Message[] = [];
    for (const m of due) {
      if (this.blocked.has(m.from * 1024 + m.to)) this.lose(m);
      else open.push(m);
    }
    return open;
  }

  private lose(m: Message): void {
    this.lost++;
    this.onLost(m);
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(from * 1024 + to);
  }

  block(from: NodeId, to: NodeId): void {
    this.blocked.add(from * 1024 + to);
  }

  /** Splits nodes into two sides; `oneWay` blocks only side A → side B. */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[], oneWay: boolean): void {
    for (const a of sideA) {
      for (const b of sideB) {
        this.block(a, b);
        if (!oneWay) this.block(b, a);
      }
    }
  }

  healPartitions(): void {
    this.blocked.clear();
  }

  get partitioned(): boolean {
    return this.blocked.size > 0;
  }
}
