// The lease table. Grants and revokes are replicated (applied from the Raft log on every replica); the expiry
// clock is LEADER-LOCAL like etcd 3.4: only the leader's deadlines matter, keepalives renew them without a log
// entry, and the leader proposes a revoke for each lease it finds expired. A new leader first `promote`s: every
// lease gets a fresh full TTL (plus the election time), so no lease expires because leadership moved.
import assert from "node:assert";
import { randomInt } from "node:crypto";
import { MAX_LEASE_TTL_SECONDS } from "./commands.js";
import { InvalidArgumentError, LeaseExistsError, LeaseNotFoundError, LeaseTtlTooLargeError } from "./errors.js";

export interface Lease {
  readonly id: number;
  /** Granted TTL in seconds (after raising to the minimum). */
  readonly ttlSeconds: number;
  /** Local deadline (ms on the store's clock); Infinity when this node is not the leader. */
  expiryMs: number;
  /** Binary (latin1) keys attached to this lease. */
  readonly keys: Set<string>;
}

export interface LeaseTableOptions {
  /** Grants below this TTL are raised to it (etcd: a few election timeouts, so a lease survives a failover). */
  minTtlSeconds: number;
}

export const DEFAULT_LEASE_OPTIONS: LeaseTableOptions = { minTtlSeconds: 2 };

/** Largest id handed out by `proposeId`: positive and exactly representable in JSON clients (2^53 - 1). */
const MAX_LEASE_ID = Number.MAX_SAFE_INTEGER;

export class LeaseTable {
  private readonly leases = new Map<number, Lease>();
  private readonly options: LeaseTableOptions;
  /** Deterministic id source for grants that reach apply with ID 0 (replicated state: part of snapshots). */
  lastGeneratedId = 0;
  /** Whether this node currently keeps deadlines (it is the leader). */
  private keepingTime = false;

  constructor(options: Partial<LeaseTableOptions> = {}) {
    this.options = { ...DEFAULT_LEASE_OPTIONS, ...options };
  }

  get size(): number {
    return this.leases.size;
  }

  get(id: number): Lease | undefined {
    return this.leases.get(id);
  }

  /** An id for a new grant, chosen by the proposer (random, unused here): keeps ids unguessable like etcd's. */
  proposeId(): number {
    for (;;) {
      const id = randomInt(1, 2 ** 47) * 64 + randomInt(0, 64);
      if (id <= MAX_LEASE_ID && !this.leases.has(id)) return id;
    }
  }

  /** Applies a grant. `id` 0 = pick deterministically. Throws LeaseExistsError / LeaseTtlTooLargeError. */
  grant(id: number, ttlSeconds: number, nowMs: number): Lease {
    if (ttlSeconds > MAX_LEASE_TTL_SECONDS) throw new LeaseTtlTooLargeError();
    if (!Number.isSafeInteger(id) || id < 0) throw new InvalidArgumentError(`invalid lease ID ${id}`);
    if (id === 0) {
      do this.lastGeneratedId++;
      while (this.leases.has(this.lastGeneratedId));
      id = this.lastGeneratedId;
    }
    if (this.leases.has(id)) throw new LeaseExistsError();
    assert(Number.isSafeInteger(id) && id > 0, "lease ids are positive safe integers");
    const ttl = Math.max(ttlSeconds, this.options.minTtlSeconds);
    const lease: Lease = { id, ttlSeconds: ttl, expiryMs: this.deadline(ttl, nowMs, 0), keys: new Set() };
    this.leases.set(id, lease);
    return lease;
  }

  /** Removes a lease; returns its attached keys (the store deletes them). */
  revoke(id: number): string[] {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new LeaseNotFoundError();
    this.leases.delete(id);
    return [...lease.keys].sort();
  }

  attach(id: number, key: string): void {
    if (id === 0) return;
    const lease = this.leases.get(id);
    assert(lease !== undefined, "attach to a missing lease (checked before applying)");
    lease.keys.add(key);
  }

  detach(id: number, key: string): void {
    if (id === 0) return;
    this.leases.get(id)?.keys.delete(key);
  }

  /** Leader-local keepalive: a fresh full TTL. Returns the TTL in seconds. */
  renew(id: number, nowMs: number): number {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new LeaseNotFoundError();
    lease.expiryMs = this.deadline(lease.ttlSeconds, nowMs, 0);
    return lease.ttlSeconds;
  }

  /**
   * Remaining whole seconds, rounded DOWN as etcd 3.4 reports them (it truncates the remaining duration): a lease
   * granted for 10 s reads 9 right after the grant, and a new leader's extra election allowance never shows as more
   * than the granted TTL for a whole second. 0 once the deadline passed (the revoke is on its way). The full TTL
   * when this node keeps no deadlines.
   */
  remainingSeconds(lease: Lease, nowMs: number): number {
    if (!Number.isFinite(lease.expiryMs)) return lease.ttlSeconds;
    return Math.max(0, Math.floor((lease.expiryMs - nowMs) / 1000));
  }

  /** Leases whose deadline passed (at most `max`, oldest first): the leader proposes a revoke for each. */
  expired(nowMs: number, max: number): number[] {
    if (!this.keepingTime) return [];
    const due: Lease[] = [];
    for (const lease of this.leases.values()) if (lease.expiryMs <= nowMs) due.push(lease);
    due.sort((a, b) => a.expiryMs - b.expiryMs || a.id - b.id);
    return due.slice(0, max).map((l) => l.id);
  }

  /** This node became leader: every lease gets a full TTL from now plus `extendMs` (the election's duration). */
  promote(nowMs: number, extendMs: number): void {
    this.keepingTime = true;
    for (const lease of this.leases.values()) lease.expiryMs = this.deadline(lease.ttlSeconds, nowMs, extendMs);
  }

  /** This node lost leadership: its deadlines stop mattering (the new leader keeps time). */
  demote(): void {
    this.keepingTime = false;
    for (const lease of this.leases.values()) lease.expiryMs = Number.POSITIVE_INFINITY;
  }

  get isKeepingTime(): boolean {
    return this.keepingTime;
  }

  /** Leases in id order. */
  list(): Lease[] {
    return [...this.leases.values()].sort((a, b) => a.id - b.id);
  }

  /** Replaces the table (restore); deadlines restart at a full TTL if this node keeps time. */
  load(leases: { id: number; ttlSeconds: number; keys: string[] }[], lastGeneratedId: number, nowMs: number): void {
    this.leases.clear();
    this.lastGeneratedId = lastGeneratedId;
    for (const l of leases) {
      this.leases.set(l.id, {
        id: l.id,
        ttlSeconds: l.ttlSeconds,
        expiryMs: this.deadline(l.ttlSeconds, nowMs, 0),
        keys: new Set(l.keys),
      });
    }
  }

  private deadline(ttlSeconds: number, nowMs: number, extendMs: number): number {
    return this.keepingTime ? nowMs + ttlSeconds * 1000 + extendMs : Number.POSITIVE_INFINITY;
  }
}
