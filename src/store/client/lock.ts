// A distributed lock on the store, with etcd's keys and protocol (clientv3/concurrency's Mutex over a Session), so
// that `vigie lock` and `etcdctl lock` exclude each other on one cluster, vigie's or etcd's.
//
// The lock NAME is the key prefix `NAME/`. Each contender holds a lease (its session, kept alive here) and puts
// `NAME/<lease id in hex>` on it, once (a create-revision compare: retrying the put is harmless). The key created
// first owns the lock; the others wait in create order, each for the deletion of the key just ahead of it, so a
// release wakes one waiter, not all. A holder that dies stops renewing: its lease expires and its key goes with it.
import { StoreUnavailableError, VigieError } from "../../errors.js";
import type { KeyValue, ResponseHeader, StoreClient, TxnOpResult } from "../client.js";

/** How often a waiter checks the key ahead of it again, besides watching it: a watch can sit on a frozen member. */
const RECHECK_MS = 5_000;
/** Attempts of one idempotent step when the member answering it drops the connection. */
const UNAVAILABLE_ATTEMPTS = 3;
/** The longest wait between two renewals of a lease with a huge TTL. */
const RENEW_MAX_MS = 10 * 60_000;

export class LockLostError extends VigieError {
  constructor(message: string) {
    super("VIGIE_ERR_LOCK_LOST", message);
  }
}

export interface Acquired {
  /** `NAME/<lease hex>`, the key this contender holds. */
  key: Buffer;
  /** The header of the answer that showed the lock was ours (etcdctl's ETCD_LOCK_REV is its revision). */
  header: ResponseHeader;
}

export interface LockSessionOptions {
  ttlSeconds: number;
  /** Called once if the session's lease ends (expired, revoked, or no member renewed it for a whole TTL). */
  onLost(reason: string): void;
}

/** A lease kept alive every third of its TTL: the lifetime of every lock taken through it. */
export class LockSession {
  private timer: NodeJS.Timeout | undefined;
  private lastRenewedMs = Date.now();
  private ended = false;

  private constructor(
    private readonly client: StoreClient,
    readonly leaseId: string,
    private readonly options: LockSessionOptions,
  ) {}

  static async open(client: StoreClient, options: LockSessionOptions): Promise<LockSession> {
    const grant = await client.leaseGrant(options.ttlSeconds);
    const session = new LockSession(client, grant.id, options);
    session.schedule();
    return session;
  }

  /** The lease ID as etcd's Mutex writes it into the key: lowercase hex, no leading zeros (Go's %x). */
  get leaseHex(): string {
    return BigInt(this.leaseId).toString(16);
  }

  /** A third of the TTL, as etcd's clients renew; at most RENEW_MAX_MS (timers cannot wait much beyond). */
  private get renewEveryMs(): number {
    return Math.min((this.options.ttlSeconds * 1000) / 3, RENEW_MAX_MS);
  }

  private schedule(): void {
    // Not unref'd: a holder waiting for a signal has nothing else keeping it alive.
    this.timer = setTimeout(() => void this.renew(), this.renewEveryMs);
  }

  private async renew(): Promise<void> {
    if (this.ended) return;
    try {
      // Each member gets until the next renewal to answer, then the next member is asked: with the request
      // timeout (5 s) a frozen member held the only renewal longer than a short lease lives (--ttl 3 expired).
      const renewed = await this.client.leaseKeepAliveOnce(this.leaseId, this.renewEveryMs);
      if (renewed.ttlSeconds <= 0) return this.lose(`lease ${this.leaseHex} expired or was revoked`);
      this.lastRenewedMs = Date.now();
    } catch (error) {
      // Unreachable for now: the lease lives on until its TTL; keep trying until then.
      if (Date.now() - this.lastRenewedMs >= this.options.ttlSeconds * 1000) {
        return this.lose(`no member renewed lease ${this.leaseHex} for ${this.options.ttlSeconds} s (${error})`);
      }
    }
    if (!this.ended) this.schedule();
  }

  private lose(reason: string): void {
    if (this.ended) return;
    this.stop();
    this.options.onLost(reason);
  }

  private stop(): void {
    this.ended = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /** Ends the session: revokes its lease, which deletes every lock key on it. Throws if no member took it. */
  async close(): Promise<void> {
    const wasEnded = this.ended;
    this.stop();
    if (!wasEnded) await this.client.leaseRevoke(this.leaseId);
  }
}

/**
 * Takes the lock `name` for `session`; resolves once it is held. `interrupted` rejects to stop waiting (the
 * caller then closes the session, which withdraws the key).
 */
export async function acquireLock(
  client: StoreClient,
  session: LockSession,
  name: Buffer,
  interrupted: Promise<never>,
): Promise<Acquired> {
  const prefix = Buffer.concat([name, Buffer.from("/")]);
  const key = Buffer.concat([prefix, Buffer.from(session.leaseHex)]);
  const firstCreated = { range: prefix, prefix: true, sortTarget: "CREATE", sortOrder: "ASCEND", limit: 1 } as const;
  const answer = await Promise.race([
    withRetries(() =>
      client.txn({
        compare: [{ key, target: "CREATE", result: "EQUAL", createRevision: 0 }],
        success: [{ put: key, value: Buffer.alloc(0), lease: session.leaseId }, firstCreated],
        failure: [{ range: key }, firstCreated],
      }),
    ),
    interrupted,
  ]);
  const mine = answer.succeeded ? answer.header.revision : rangeKvs(answer.responses[0])[0]?.createRevision;
  if (mine === undefined) throw new LockLostError(`the lock key ${key} vanished as it was taken`);
  const owner = rangeKvs(answer.responses[1])[0];
  if (owner === undefined || owner.createRevision === mine) return { key, header: answer.header };
  const header = await waitForEarlierKeysGone(client, prefix, mine - 1, interrupted);
  // A waiter whose lease ended meanwhile must not think it holds the lock: its key is gone with the lease.
  const still = await withRetries(() => client.range(key));
  if (still.kvs.length === 0) throw new LockLostError(`the lock key ${key} was deleted while it waited`);
  return { key, header };
}

/** etcd's waitDeletes: until no key under `prefix` created at or before `maxCreateRevision` is left. */
async function waitForEarlierKeysGone(
  client: StoreClient,
  prefix: Buffer,
  maxCreateRevision: number,
  interrupted: Promise<never>,
): Promise<ResponseHeader> {
  for (;;) {
    const ahead = await Promise.race([
      withRetries(() =>
        client.range(prefix, {
          prefix: true,
          sortTarget: "CREATE",
          sortOrder: "DESCEND",
          limit: 1,
          maxCreateRevision,
        }),
      ),
      interrupted,
    ]);
    const last = ahead.kvs[0];
    if (last === undefined) return ahead.header;
    await Promise.race([deletedOrRecheck(client, last.key, ahead.header.revision + 1), interrupted]);
  }
}

/** Resolves when `key` is deleted at or after `fromRevision`, or after RECHECK_MS, or when the watch breaks. */
async function deletedOrRecheck(client: StoreClient, key: Buffer, fromRevision: number): Promise<void> {
  const stream = client.watch(key, { startRevision: fromRevision });
  const timer = setTimeout(() => stream.cancel(), RECHECK_MS);
  try {
    for await (const response of stream) {
      if (response.canceled || response.events.some((event) => event.type === "DELETE")) return;
    }
  } catch (error) {
    if (!(error instanceof StoreUnavailableError)) throw error;
    // The member went away: the caller looks again, through another.
  } finally {
    clearTimeout(timer);
    stream.cancel();
  }
}

function rangeKvs(result: TxnOpResult | undefined): KeyValue[] {
  return result?.kind === "range" ? result.result.kvs : [];
}

/** Runs an idempotent step again when its member dropped the connection (a write's outcome is then unknown). */
async function withRetries<T>(step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || attempt >= UNAVAILABLE_ATTEMPTS) throw error;
    }
  }
}
