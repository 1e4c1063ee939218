// Per-template quiescence: a burst of changes becomes one render. `min` is how long the data must stay still;
// `max` bounds the delay under constant churn. With `wait` 0 a template renders on the next turn of the event loop,
// which still coalesces every event of one watch message. Templates due at the same moment flush as one batch, so
// their shared reload target fires once.
import assert from "node:assert/strict";

export interface Wait {
  minMs: number;
  maxMs: number;
}

interface Pending {
  firstAtMs: number;
  timer: NodeJS.Timeout | undefined;
}

export class QuiescenceScheduler {
  private readonly pending = new Map<string, Pending>();
  private readonly due = new Set<string>();
  private flushScheduled = false;
  private stopped = false;

  constructor(private readonly flush: (names: string[]) => void) {}

  /** A dependency of `name` changed (or it must render for another reason). */
  trigger(name: string, wait: Wait | undefined): void {
    if (this.stopped) return;
    const minMs = wait?.minMs ?? 0;
    // Without an explicit max, churn may delay a render by at most four quiet periods (like consul-template).
    const maxMs = wait === undefined || wait.maxMs === 0 ? minMs * 4 : Math.max(wait.maxMs, minMs);
    assert.ok(minMs >= 0 && maxMs >= 0, "wait durations are not negative");
    if (minMs === 0 && maxMs === 0) {
      this.markDue(name);
      return;
    }
    const now = performance.now();
    let entry = this.pending.get(name);
    if (entry === undefined) {
      entry = { firstAtMs: now, timer: undefined };
      this.pending.set(name, entry);
    }
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    const fireAtMs = Math.min(now + minMs, entry.firstAtMs + maxMs);
    entry.timer = setTimeout(
      () => {
        this.pending.delete(name);
        this.markDue(name);
      },
      Math.max(0, fireAtMs - now),
    );
  }

  cancel(name: string): void {
    const entry = this.pending.get(name);
    if (entry?.timer !== undefined) clearTimeout(entry.timer);
    this.pending.delete(name);
    this.due.delete(name);
  }

  stop(): void {
    this.stopped = true;
    for (const name of [...this.pending.keys()]) this.cancel(name);
    this.due.clear();
  }

  private markDue(name: string): void {
    this.due.add(name);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.stopped || this.due.size === 0) return;
      const names = [...this.due];
      this.due.clear();
      this.flush(names);
    });
  }
}
