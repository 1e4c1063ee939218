// Requests waiting for the replicated log: proposals (resolved when this replica applies their entry) and
// linearizable reads (resolved once a ReadIndex round confirmed the leader and this replica applied that index).
// Every waiter has a deadline, and the tables have a size limit: a stuck cluster fails requests, never piles them up.
import { RequestTimeoutError, TooManyRequestsError } from "./errors.js";

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** Waiters keyed by request id (or any string/number key), each with its own timeout. */
export class WaitTable<K, T> {
  private readonly waiters = new Map<K, Waiter<T>>();

  constructor(private readonly maxWaiters: number) {}

  get size(): number {
    return this.waiters.size;
  }

  has(key: K): boolean {
    return this.waiters.has(key);
  }

  /**
   * Registers a waiter. Throws (synchronously) when the table is full, so a caller that registers before it proposes
   * never proposes a request it already failed: a client would retry it and it would apply twice.
   */
  wait(key: K, timeoutMs: number): Promise<T> {
    if (this.waiters.size >= this.maxWaiters) throw new TooManyRequestsError();
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new RequestTimeoutError());
      }, timeoutMs);
      this.waiters.set(key, { resolve, reject, timer });
    });
  }

  resolve(key: K, value: T): boolean {
    const waiter = this.waiters.get(key);
    if (waiter === undefined) return false;
    this.waiters.delete(key);
    clearTimeout(waiter.timer);
    waiter.resolve(value);
    return true;
  }

  reject(key: K, error: Error): void {
    const waiter = this.waiters.get(key);
    if (waiter === undefined) return;
    this.waiters.delete(key);
    clearTimeout(waiter.timer);
    waiter.reject(error);
  }

  rejectAll(error: Error): void {
    for (const key of [...this.waiters.keys()]) this.reject(key, error);
  }
}

interface ReadWaiter {
  resolve(): void;
  reject(error: Error): void;
  deadlineMs: number;
}

/**
 * Linearizable reads, batched like etcd does: one ReadIndex round serves every read that arrived before it started;
 * reads arriving meanwhile wait for the next round. A round lost in a leader change is retried until the reads'
 * deadlines pass.
 */
export class ReadBarrier {
  private queued: ReadWaiter[] = [];
  private round: { context: string; waiters: ReadWaiter[]; timer: NodeJS.Timeout } | undefined;
  /** Rounds confirmed by the leader, waiting for this replica to apply `index`. */
  private confirmed: Array<{ index: number; waiters: ReadWaiter[] }> = [];
  private roundSeq = 0;

  constructor(
    private readonly options: {
      maxWaiters: number;
      roundTimeoutMs: number;
      /** Starts a ReadIndex round in the core; throws when it cannot (e.g. no leader). */
      requestReadIndex(context: string): Promise<void>;
      appliedIndex(): number;
      prefix: string;
    },
  ) {}

  wait(timeoutMs: number): Promise<void> {
    if (this.queued.length + (this.round?.waiters.length ?? 0) >= this.options.maxWaiters) {
      return Promise.reject(new TooManyRequestsError());
    }
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ resolve, reject, deadlineMs: Date.now() + timeoutMs });
      if (this.round === undefined) this.startRound();
    });
  }

  private startRound(): void {
    const now = Date.now();
    const waiters: ReadWaiter[] = [];
    for (const w of this.queued) {
      if (w.deadlineMs <= now) w.reject(new RequestTimeoutError());
      else waiters.push(w);
    }
    this.queued = [];
    if (waiters.length === 0) return;
    const context = `${this.options.prefix}${++this.roundSeq}`;
    const timer = setTimeout(() => this.retry(context), this.options.roundTimeoutMs);
    this.round = { context, waiters, timer };
    this.options.requestReadIndex(context).catch(() => {
      // No leader right now: keep the reads and retry when the round times out (or fail them at their deadline).
    });
  }

  private retry(context: string): void {
    if (this.round?.context !== context) return;
    this.queued = [...this.round.waiters, ...this.queued];
    this.round = undefined;
    this.startRound();
  }

  /** The leader changed: a round sent to the old one will not be answered, so start it again right away. */
  retryNow(): void {
    if (this.round === undefined) return;
    clearTimeout(this.round.timer);
    this.retry(this.round.context);
  }

  /** The core answered a round: its reads may be served once `index` is applied. */
  onReadState(context: string, index: number): void {
    if (this.round?.context !== context) return;
    clearTimeout(this.round.timer);
    this.confirmed.push({ index, waiters: this.round.waiters });
    this.round = undefined;
    this.onApplied(this.options.appliedIndex());
    if (this.queued.length > 0) this.startRound();
  }

  onApplied(applied: number): void {
    if (this.confirmed.length === 0) return;
    const remaining: typeof this.confirmed = [];
    for (const batch of this.confirmed) {
      if (batch.index <= applied) for (const w of batch.waiters) w.resolve();
      else remaining.push(batch);
    }
    this.confirmed = remaining;
  }

  /** Fails confirmed reads whose deadline passed while this replica could not apply (e.g. cut off). */
  expire(nowMs: number): void {
    if (this.confirmed.length === 0) return;
    for (const batch of this.confirmed) {
      const alive = batch.waiters.filter((w) => w.deadlineMs > nowMs);
      for (const w of batch.waiters) if (w.deadlineMs <= nowMs) w.reject(new RequestTimeoutError());
      batch.waiters = alive;
    }
    this.confirmed = this.confirmed.filter((batch) => batch.waiters.length > 0);
  }

  rejectAll(error: Error): void {
    if (this.round) {
      clearTimeout(this.round.timer);
      for (const w of this.round.waiters) w.reject(error);
      this.round = undefined;
    }
    for (const w of this.queued) w.reject(error);
    for (const batch of this.confirmed) for (const w of batch.waiters) w.reject(error);
    this.queued = [];
    this.confirmed = [];
  }
}
