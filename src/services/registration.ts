// Keeps one service instance's entry in the store in line with its health:
//   passing  → `/services/<name>/<id>` = {..., health: "passing"} on a lease renewed every ttl/3;
//   critical → the entry is rewritten with health "critical" and its lease is no longer renewed, so the store removes
//              it when the lease expires (load balancers drop it at once: the `service` helper keeps only "passing");
//              a fresh standby lease is granted and kept alive meanwhile, for the recovery;
//   recovery → written again as passing on the standby lease: one put, whether or not the old lease has expired.
// The health check keeps running while the store is unreachable; when it answers again the entry is written anew
// (on a new lease when the old one expired meanwhile). Two loops, both bounded and both stopped by stop():
// the check loop (one check at a time, next one `interval` after the previous ended) and the store loop (one request
// at a time; `sync()` runs until what is in the store matches what should be).
import assert from "node:assert/strict";
import type { ServiceConfig } from "../config/schema.js";
import type { Logger } from "../log.js";
import { EtcdError, GRPC_NOT_FOUND, type StoreClient } from "../store/client.js";
import { type CheckResult, runCheck } from "./checks.js";
import { type AnnouncedHealth, type Health, HealthTracker } from "./health.js";
import { instanceId, instanceKey, instanceValue } from "./instance.js";
import type { ServiceMetrics } from "./metrics.js";

/** The store calls registration needs; the StoreClient provides them (against vigie or etcd). */
export type RegistryStore = Pick<StoreClient, "put" | "leaseGrant" | "leaseRevoke" | "leaseKeepAliveOnce">;

export interface ServiceStatus {
  name: string;
  id: string;
  key: string;
  address: string;
  /** What the checks say now (`pending` until the thresholds decide). */
  health: Health;
  /** What the store holds, as far as this agent knows (undefined: nothing written, or lost with its lease). */
  announced: AnnouncedHealth | undefined;
  leaseId: string | undefined;
  storeReachable: boolean;
  lastCheck: (CheckResult & { at: string }) | undefined;
}

/** Store retries start fast (a blip costs little) and back off to this, or to the renewal interval if shorter. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;
/** Floor for the renewal interval, so a tiny TTL cannot turn into a busy loop. */
const KEEPALIVE_MIN_MS = 100;

export class ServiceRegistration {
  readonly id: string;
  readonly key: string;
  private readonly tracker: HealthTracker | undefined;
  private readonly log: Logger;
  private stopped = false;
  private announced: AnnouncedHealth | undefined;
  /** The lease kept alive and written on: the passing entry's, or a standby one while critical or pending. */
  private leaseId: string | undefined;
  /** The lease the entry in the store is attached to (differs from leaseId while critical); revoked by stop(). */
  private entryLeaseId: string | undefined;
  private leaseTtlMs: number;
  /** When (performance.now()) the store last confirmed the lease's full ttl: granted or renewed. */
  private leaseRenewedAtMs = 0;
  private storeReachable = true;
  private lastCheck: ServiceStatus["lastCheck"];
  private retryDelayMs = RETRY_MIN_MS;
  private checkTimer: NodeJS.Timeout | undefined;
  private storeTimer: NodeJS.Timeout | undefined;
  private runningCheck: Promise<void> | undefined;
  private runningSync: Promise<void> | undefined;
  /** Set when something changed while a sync was running: the running one loops once more. */
  private syncAgain = false;
  /** Set by the renewal timer: the next sync renews the lease. */
  private renewDue = false;

  constructor(
    private readonly service: ServiceConfig,
    private readonly store: RegistryStore,
    logger: Logger,
    private readonly metrics: ServiceMetrics,
  ) {
    assert.ok(service.ttl > 0, "a service needs a positive ttl");
    this.id = instanceId(service);
    this.key = instanceKey(service.name, this.id);
    this.leaseTtlMs = service.ttl;
    const check = service.check;
    this.tracker = check ? new HealthTracker(check.healthy_threshold, check.unhealthy_threshold) : undefined;
    this.log = logger.child({ service: service.name, id: this.id });
  }

  /** Without a check the instance is healthy for as long as the agent runs. */
  get health(): Health {
    return this.tracker?.health ?? "passing";
  }

  start(): void {
    // Both at once: the lease is granted while the first check runs.
    this.requestSync();
    if (this.tracker !== undefined) this.runCheckNow();
  }

  status(): ServiceStatus {
    return {
      name: this.service.name,
      id: this.id,
      key: this.key,
      address: this.service.address,
      health: this.health,
      announced: this.announced,
      leaseId: this.entryLeaseId ?? this.leaseId,
      storeReachable: this.storeReachable,
      lastCheck: this.lastCheck,
    };
  }

  /** Stops both loops, then revokes the lease: the entry disappears now instead of after its ttl. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.checkTimer);
    clearTimeout(this.storeTimer);
    await Promise.all([this.runningCheck, this.runningSync]);
    const entryLeaseId = this.entryLeaseId;
    const standbyLeaseId = this.leaseId;
    this.leaseId = undefined;
    this.entryLeaseId = undefined;
    this.announced = undefined;
    if (entryLeaseId !== undefined) await this.revoke(entryLeaseId, "deregistered (lease revoked)");
    // While critical, the entry sits on a lease left to run down and a standby lease waits for the recovery.
    if (standbyLeaseId !== undefined && standbyLeaseId !== entryLeaseId) {
      await this.revoke(standbyLeaseId, "standby lease revoked");
    }
  }

  private async revoke(leaseId: string, done: string): Promise<void> {
    try {
      await this.store.leaseRevoke(leaseId);
      this.log.info({ key: this.key, lease: leaseId }, done);
    } catch (error) {
      if (isLeaseGone(error)) return;
      this.log.warn({ key: this.key, err: describe(error) }, "could not revoke the lease; the entry expires after ttl");
    }
  }

  private runCheckNow(): void {
    const check = this.service.check;
    assert.ok(check !== undefined && this.tracker !== undefined);
    if (this.stopped) return;
    this.runningCheck = (async () => {
      const result = await runCheck(check);
      if (this.stopped) return;
      this.lastCheck = { ...result, at: new Date().toISOString() };
      this.metrics.checks.inc(1, { service: this.service.name, id: this.id, result: result.passing ? "pass" : "fail" });
      const changed = this.tracker?.record(result.passing);
      if (changed !== undefined) {
        this.metrics.healthy.set(changed === "passing" ? 1 : 0, { service: this.service.name, id: this.id });
        const log = changed === "passing" ? this.log.info : this.log.warn;
        log.call(this.log, { health: changed, check: result.output }, `health is now ${changed}`);
        this.requestSync();
      }
      this.checkTimer = setTimeout(() => this.runCheckNow(), check.interval);
    })();
  }

  /** Runs the store loop, or asks the running one to go round once more. */
  private requestSync(): void {
    if (this.stopped) return;
    if (this.runningSync !== undefined) {
      this.syncAgain = true;
      return;
    }
    clearTimeout(this.storeTimer);
    this.storeTimer = undefined;
    this.runningSync = this.syncLoop().finally(() => {
      this.runningSync = undefined;
    });
  }

  private async syncLoop(): Promise<void> {
    do {
      this.syncAgain = false;
      try {
        await this.syncOnce();
        this.markReachable();
        this.retryDelayMs = RETRY_MIN_MS;
      } catch (error) {
        if (this.stopped) return;
        this.markUnreachable(error);
        this.scheduleStoreWork(this.retryDelayMs);
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_MAX_MS, this.keepaliveIntervalMs());
        return;
      }
    } while (this.syncAgain && !this.stopped);
    if (this.leaseId !== undefined) this.scheduleRenewal();
  }

  /**
   * One pass: make the store hold what the health says. Throws when the store cannot be reached.
   * The lease is granted before the first check decides (so a new instance costs one write once healthy, not two)
   * and renewed. The critical entry's lease is left to run down, and a standby lease takes over the renewals, so
   * a recovery, like the first passing check, costs the store one put. A write goes out alone when its lease was
   * granted or renewed within the last renewal interval (it has at least 2/3 of its ttl left, and the renewal timer
   * restarts after this pass); otherwise (after an outage) a renewal goes out with it.
   */
  private async syncOnce(): Promise<void> {
    const wanted = this.health;
    if (this.stopped) return;
    if (this.leaseId === undefined) {
      const lease = await this.store.leaseGrant(Math.max(1, Math.ceil(this.service.ttl / 1000)));
      this.leaseId = lease.id;
      this.leaseTtlMs = lease.ttlSeconds * 1000;
      this.leaseRenewedAtMs = performance.now();
      this.renewDue = false;
    }
    const leaseId = this.leaseId;
    const needsWrite = wanted !== "pending" && this.announced !== wanted;
    const leaseFresh = performance.now() - this.leaseRenewedAtMs <= this.keepaliveIntervalMs();
    // Never renew the lease a critical entry is being written on: that lease is about to be left to run down.
    const writesCritical = needsWrite && wanted === "critical";
    const needsRenewal = !writesCritical && (this.renewDue || (needsWrite && !leaseFresh));
    const renewalSentAtMs = performance.now();
    const [renewal, write] = await Promise.allSettled([
      needsRenewal ? this.store.leaseKeepAliveOnce(leaseId) : undefined,
      needsWrite
        ? this.store.put(this.key, JSON.stringify(instanceValue(this.service, wanted)), { lease: leaseId })
        : undefined,
    ]);
    let leaseGone = false;
    let failure: unknown;
    if (renewal.status === "rejected") failure = renewal.reason;
    else if (renewal.value !== undefined) {
      // Cleared only once the store answered: a renewal lost to an outage is retried first thing on reconnect.
      this.renewDue = false;
      if (renewal.value.ttlSeconds <= 0) leaseGone = true;
      else this.leaseRenewedAtMs = renewalSentAtMs;
    }
    if (write.status === "rejected") {
      if (isLeaseGone(write.reason)) leaseGone = true;
      else failure ??= write.reason;
    } else if (needsWrite) {
      this.announced = wanted as AnnouncedHealth;
      this.entryLeaseId = leaseId;
      const message = wanted === "passing" ? "registered" : "marked critical; its lease is left to expire";
      this.log.info({ key: this.key, health: wanted, lease: leaseId }, message);
      if (wanted === "critical" && this.leaseId === leaseId) {
        // Hand the renewals over to a standby lease (granted on the next pass), ready for the recovery.
        this.leaseId = undefined;
        this.syncAgain = true;
      }
    }
    if (leaseGone && this.leaseId === leaseId) {
      // Expired while critical, pending or while the store was away: start over on a new lease.
      this.log.warn({ lease: leaseId }, "lease expired; registering on a new one");
      this.forgetLease();
      this.syncAgain = true;
    }
    if (failure !== undefined) throw failure;
  }

  /** The kept-alive lease is gone; if the entry was on it, so is the entry. */
  private forgetLease(): void {
    if (this.entryLeaseId === this.leaseId) {
      this.entryLeaseId = undefined;
      this.announced = undefined;
    }
    this.leaseId = undefined;
  }

  private keepaliveIntervalMs(): number {
    return Math.max(KEEPALIVE_MIN_MS, Math.floor(this.leaseTtlMs / 3));
  }

  private scheduleRenewal(): void {
    this.scheduleStoreWork(this.keepaliveIntervalMs(), () => {
      this.renewDue = true;
    });
  }

  private scheduleStoreWork(delayMs: number, before?: () => void): void {
    if (this.stopped) return;
    clearTimeout(this.storeTimer);
    this.storeTimer = setTimeout(() => {
      this.storeTimer = undefined;
      before?.();
      this.requestSync();
    }, delayMs);
  }

  private markUnreachable(error: unknown): void {
    this.metrics.storeErrors.inc(1, { service: this.service.name, id: this.id });
    if (!this.storeReachable) return;
    this.storeReachable = false;
    this.log.warn({ err: describe(error) }, "store unreachable; health checks go on, registration retries");
  }

  private markReachable(): void {
    if (this.storeReachable) return;
    this.storeReachable = true;
    // Whatever happened while we were away (a restored or replaced store), write the entry again.
    this.announced = undefined;
    this.syncAgain = true;
    this.log.info("store reachable again; registering again");
  }
}

function isLeaseGone(error: unknown): boolean {
  return error instanceof EtcdError && error.grpcCode === GRPC_NOT_FOUND && /lease not found/i.test(error.message);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
