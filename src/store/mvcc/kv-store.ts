// The replicated state machine of vigie's store: applies committed commands (in Raft log order, the same on
// every replica) to the MVCC key space and lease table, serves local reads and watches, and snapshots/restores
// the whole state for Raft snapshots. Deterministic: apply depends only on the command and prior state (the
// clock only feeds leader-local lease deadlines, never replicated decisions).
import assert from "node:assert";
import { decodeCommand } from "./codec.js";
import type {
  Command,
  CommandResponseMap,
  CommandType,
  CompactionRequest,
  CompactionResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
} from "./commands.js";
import { CompactedError, FutureRevisionError, KeyNotProvidedError, LeaseNotFoundError, MvccError } from "./errors.js";
import { KeySpace } from "./key-space.js";
import { keyBytes } from "./kv-convert.js";
import { LeaseTable, type LeaseTableOptions } from "./leases.js";
import { runRange } from "./range.js";
import { decodeSnapshot, encodeSnapshot } from "./snapshot-codec.js";
import { checkTxnShape } from "./txn-check.js";
import { WatchHub } from "./watch-hub.js";
import type { WatchCreateRequest, WatchLimits } from "./watch-types.js";
import type { Watcher } from "./watcher.js";
import { WriteBatch, WriteOps } from "./write-ops.js";

export interface KvStoreOptions {
  /** Milliseconds on a monotonic clock (lease deadlines). Injected for deterministic tests. */
  clock: () => number;
  leases: Partial<LeaseTableOptions>;
  watch: Partial<WatchLimits>;
}

/** The outcome of applying one command: the etcd-shaped response, or the etcd error (state unchanged). */
export type ApplyResult<T extends CommandType = CommandType> =
  | { ok: true; response: CommandResponseMap[T] }
  | { ok: false; error: MvccError };

export class KvStore {
  private readonly space = new KeySpace();
  /** Replicated lease table; `leases.renew` is the leader-local keepalive. */
  readonly leases: LeaseTable;
  private readonly hub: WatchHub;
  private readonly ops: WriteOps;
  private readonly clock: () => number;
  private applied = 0;

  constructor(options: Partial<KvStoreOptions> = {}) {
    this.clock = options.clock ?? (() => performance.now());
    this.leases = new LeaseTable(options.leases);
    this.hub = new WatchHub(this.space, options.watch);
    this.ops = new WriteOps(this.space, this.leases);
  }

  /** Index of the last Raft entry applied (or restored from a snapshot). */
  get appliedIndex(): number {
    return this.applied;
  }

  /** Current store revision (1 for a fresh store). */
  get revision(): number {
    return this.space.currentRevision;
  }

  get compactRevision(): number {
    return this.space.compactRevision;
  }

  /** Number of keys indexed (live or with history). */
  get indexedKeyCount(): number {
    return this.space.index.size;
  }

  get watcherCount(): number {
    return this.hub.size;
  }

  /** Key revisions kept for history (grows with every write until a compaction). */
  get historySize(): number {
    return this.space.eventCount;
  }

  /**
   * History is kept until a compaction, which must be replicated (every replica compacts at the same point).
   * The leader calls this periodically and proposes `{ type: "compaction", request: { revision } }` when it
   * returns a revision: keep the last `retainRevisions` revisions (etcd's revision-mode auto-compaction).
   */
  compactionTarget(retainRevisions: number): number | null {
    const target = this.space.currentRevision - retainRevisions;
    return target > this.space.compactRevision && target > 1 ? target : null;
  }

  /**
   * Applies the committed command of Raft entry `raftIndex` (strictly increasing). Never throws for a request
   * error: etcd's error comes back in the result and the state is unchanged (still counted as applied).
   */
  apply<C extends Command>(command: C, raftIndex: number): ApplyResult<C["type"]> {
    assert(raftIndex > this.applied, `apply out of order: ${raftIndex} after ${this.applied}`);
    this.applied = raftIndex;
    try {
      return { ok: true, response: this.execute(command) as CommandResponseMap[C["type"]] };
    } catch (error) {
      if (error instanceof MvccError) return { ok: false, error };
      throw error;
    }
  }

  /** Decodes a Raft entry's data and applies it (see `apply`). Throws CommandDecodeError on foreign bytes. */
  applyEntry(data: Uint8Array, raftIndex: number): ApplyResult {
    return this.apply(decodeCommand(data), raftIndex);
  }

  /** Records an entry that carries no store command (leader no-op, conf change) as applied. */
  markApplied(raftIndex: number): void {
    assert(raftIndex > this.applied, `apply out of order: ${raftIndex} after ${this.applied}`);
    this.applied = raftIndex;
  }

  /**
   * Checks what can be checked before proposing (key present, txn shape and duplicate keys): fail fast
   * instead of replicating a request that can only fail. Throws the MvccError etcd would return.
   */
  validate(command: Command): void {
    if (command.type === "txn") checkTxnShape(command.request);
    else if ("key" in command.request && command.request.key.length === 0) throw new KeyNotProvidedError();
  }

  /** A local (serializable) read. Throws CompactedError / FutureRevisionError / KeyNotProvidedError. */
  range(request: RangeRequest): RangeResponse {
    return runRange(this.space, request, this.space.currentRevision, this.header());
  }

  /** Starts a watch; read it with `for await (const response of watcher)` and `watcher.cancel()` to stop. */
  watch(request: WatchCreateRequest): Watcher {
    if (request.key.length === 0) throw new KeyNotProvidedError();
    return this.hub.watch(request);
  }

  /** Sends progress notifications to idle `progress_notify` watchers (call every few seconds to minutes). */
  watchProgressTick(): void {
    this.hub.progressTick();
  }

  /** etcd's WatchProgressRequest for one watcher. */
  requestWatchProgress(watchId: number): void {
    this.hub.requestProgress(watchId);
  }

  /** Leader-local keepalive (not replicated, see commands.ts). Throws LeaseNotFoundError. */
  keepAlive(id: number): LeaseKeepAliveResponse {
    const ttl = this.leases.renew(id, this.clock());
    return { header: this.header(), ID: id, TTL: ttl };
  }

  timeToLive(request: LeaseTimeToLiveRequest): LeaseTimeToLiveResponse {
    const lease = this.leases.get(request.ID);
    if (lease === undefined) return { header: this.header(), ID: request.ID, TTL: -1, grantedTTL: 0, keys: [] };
    const keys = request.keys ? [...lease.keys].sort().map(keyBytes) : [];
    const ttl = this.leases.remainingSeconds(lease, this.clock());
    return { header: this.header(), ID: lease.id, TTL: ttl, grantedTTL: lease.ttlSeconds, keys };
  }

  /** etcd lists leases by expiry, soonest first (ties and non-leaders, whose deadlines are all Infinity: by id). */
  leaseList(): LeaseLeasesResponse {
    const leases = this.leases.list().sort((a, b) => a.expiryMs - b.expiryMs || a.id - b.id);
    return { header: this.header(), leases: leases.map((l) => ({ ID: l.id })) };
  }

  /** Leases the leader should revoke now (propose a `leaseRevoke` for each). Empty on non-leaders. */
  expiredLeases(nowMs = this.clock(), max = 1000): number[] {
    return this.leases.expired(nowMs, max);
  }

  /** This node became leader: refresh every lease to a full TTL plus `extendMs` (no expiry because of failover). */
  promoteLeases(extendMs: number): void {
    this.leases.promote(this.clock(), extendMs);
  }

  /** This node stopped being leader: it no longer decides expiry. */
  demoteLeases(): void {
    this.leases.demote();
  }

  /**
   * The whole state (key space with history, leases, applied index) as bytes, for a Raft snapshot: from offset
   * `headroom` of the returned buffer to its end; the caller writes its own header into the bytes before.
   */
  snapshot(headroom = 0): Uint8Array {
    const { histories, events } = this.space.dump();
    return encodeSnapshot(
      {
        appliedIndex: this.applied,
        currentRevision: this.space.currentRevision,
        compactRevision: this.space.compactRevision,
        lastGeneratedLeaseId: this.leases.lastGeneratedId,
        leases: this.leases.list().map((l) => ({ id: l.id, ttlSeconds: l.ttlSeconds })),
        histories,
        events,
      },
      headroom,
    );
  }

  /**
   * Replaces the state with a snapshot's. Watchers stay open and catch up from the restored history (or are
   * cancelled with compact_revision when their position is gone). Throws SnapshotDecodeError.
   */
  restore(data: Uint8Array): void {
    const state = decodeSnapshot(data);
    const previousRevision = this.space.currentRevision;
    this.space.load(state);
    const leaseKeys = new Map<number, string[]>();
    for (const history of state.histories) {
      const last = history.revisions[history.revisions.length - 1];
      if (last === undefined || last.value === null || last.lease === 0) continue;
      const keys = leaseKeys.get(last.lease);
      if (keys === undefined) leaseKeys.set(last.lease, [history.key]);
      else keys.push(history.key);
    }
    this.leases.load(
      state.leases.map((l) => ({ ...l, keys: leaseKeys.get(l.id) ?? [] })),
      state.lastGeneratedLeaseId,
      this.clock(),
    );
    this.applied = state.appliedIndex;
    this.hub.resyncAll(Math.min(previousRevision, state.currentRevision));
  }

  /** Cancels every watcher (shutdown). */
  close(): void {
    this.hub.cancelAll("store closed");
  }

  private header(): ResponseHeader {
    return { revision: this.space.currentRevision };
  }

  private execute(command: Command): CommandResponseMap[CommandType] {
    const current = this.space.currentRevision;
    switch (command.type) {
      case "range":
        return this.range(command.request);
      case "put":
        this.ops.checkPut(command.request, current, true);
        return this.write((batch) => this.ops.put(command.request, batch));
      case "deleteRange":
        if (command.request.key.length === 0) throw new KeyNotProvidedError();
        return this.write((batch) => this.ops.deleteRange(command.request, batch));
      case "txn":
        checkTxnShape(command.request);
        return this.write((batch) => this.ops.txn(command.request, batch, this.ops.planTxn(command.request, current)));
      case "compaction":
        return this.compact(command.request);
      case "leaseGrant":
        return this.grant(command.request);
      case "leaseRevoke":
        return this.revoke(command.request.ID);
    }
  }

  /** Runs `body` in one revision; commits and notifies watchers only when something changed. */
  private write<T>(body: (batch: WriteBatch) => T): T {
    const header: ResponseHeader = { revision: this.space.currentRevision };
    const batch = new WriteBatch(this.space.currentRevision + 1, header);
    const response = body(batch);
    if (batch.changes.length > 0) {
      this.space.commit(batch.revision);
      header.revision = batch.revision;
      this.hub.dispatch(batch.revision, batch.changes);
    }
    return response;
  }

  /** etcd's rule: at or below the last compaction -> compacted (even for 0 and negative), above current -> future. */
  private compact(request: CompactionRequest): CompactionResponse {
    if (request.revision <= this.space.etcdCompactRevision) throw new CompactedError(this.space.compactRevision);
    if (request.revision > this.space.currentRevision) throw new FutureRevisionError();
    if (request.revision === 0) this.space.compactAtZero();
    else this.space.compact(request.revision);
    return { header: this.header() };
  }

  private grant(request: LeaseGrantRequest): LeaseGrantResponse {
    const lease = this.leases.grant(request.ID ?? 0, request.TTL, this.clock());
    return { header: this.header(), ID: lease.id, TTL: lease.ttlSeconds, error: "" };
  }

  private revoke(id: number): LeaseRevokeResponse {
    if (this.leases.get(id) === undefined) throw new LeaseNotFoundError();
    const keys = this.leases.revoke(id);
    return this.write((batch) => {
      const victims = keys.map((key) => this.space.get(key, batch.readRevision())).filter((kv) => kv !== undefined);
      this.ops.deleteKeys(victims, false, batch);
      return { header: batch.header };
    });
  }
}
