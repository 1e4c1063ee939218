// The Raft driver: the single loop that feeds the pure core (ticks, peer messages, local requests) and carries
// out its Ready batches in the order the core's contract demands (src/store/raft/types.ts):
//   persist + fsync  ->  send  ->  apply committed entries  ->  answer reads  ->  advance.
// Two leader-only departures, both safe because the order protects what is persisted, not what is sent or applied:
// new entries go to the followers while the leader writes them itself, and the commit notices of a batch that only
// commits go out after the clients of those entries are answered (see handleReady).
// Inputs that arrive while a batch is being persisted wait in an inbox and go into the next batch, so one fsync
// covers every proposal that arrived meanwhile (group commit without a timer).
import type { Logger } from "../../log.js";
import type { MemberTable } from "../cluster/members.js";
import type { KvStore } from "../mvcc/kv-store.js";
import { decodeConfChange } from "../raft/codec.js";
import type { MemoryStorage } from "../raft/memory-storage.js";
import type { RaftNode } from "../raft/raft-node.js";
import type { ConfChange, ConfState, Entry, Message, Ready, Snapshot, SoftState } from "../raft/types.js";
import { ServerStoppedError } from "./errors.js";
import type { NodeMetrics } from "./metrics.js";
import type { RaftPersistence } from "./persistence.js";
import { decodeSnapshotData, encodeSnapshotData } from "./snapshot-data.js";
import { type SnapshotPolicy, snapshotDue } from "./snapshot-policy.js";

/** Observers of what the driver applies (the replica facade resolves requests from these). */
export interface DriverHooks {
  send(messages: readonly Message[]): void;
  onSoftState(state: SoftState): void;
  /** A normal entry with data was applied at `index`. */
  onEntry(entry: Entry): void;
  onConfChange(cc: ConfChange, confState: ConfState): void;
  onRestored(): void;
  onReadState(context: string, index: number): void;
  onApplied(index: number): void;
  /** Unrecoverable (storage) failure: the replica must stop. */
  onFatal(error: Error): void;
}

export interface DriverOptions {
  raft: RaftNode;
  storage: MemoryStorage;
  persistence: RaftPersistence;
  kv: KvStore;
  members: MemberTable;
  logger: Logger;
  metrics: NodeMetrics;
  hooks: DriverHooks;
  tickMs: number;
  /** When to snapshot the store (snapshot-policy.ts). */
  snapshotPolicy: SnapshotPolicy;
  /** Entries kept in the log behind a snapshot, so a briefly lagging follower needs no snapshot. */
  snapshotKeepEntries: number;
}

interface LocalOp {
  run(): void;
  reject(error: Error): void;
}

/**
 * Ticks stepped per turn of the loop; ticks that piled up beyond this while the loop waited (a slow fsync, a stalled
 * event loop) are dropped. Catching up on all of them at once would run a leader's check-quorum several times in a
 * row with no chance to hear from the followers in between, and it steps down although they are all there. Raft only
 * needs time not to run fast; a clock that runs slow during a stall delays an election a little, nothing more.
 */
const MAX_TICKS_PER_TURN = 2;

/** Peer messages waiting for the next turn of the loop; beyond this they are dropped (Raft resends). */
const MAX_INBOX_MESSAGES = 65_536;

export class RaftDriver {
  private readonly raft: RaftNode;
  private inbox: Message[] = [];
  private ops: LocalOp[] = [];
  private pendingTicks = 0;
  private scheduled = false;
  private running = false;
  private stopped = false;
  private failed = false;
  private ticker: NodeJS.Timeout | undefined;
  private confState: ConfState;
  private lastSnapshotIndex: number;
  /** The size of the last snapshot taken or received, and the data bytes of the entries applied since. */
  private lastSnapshotBytes: number;
  private bytesAppliedSinceSnapshot = 0;
  /** The snapshot being written while the loop goes on (see startSnapshot), or null. */
  private snapshotWrite: Promise<void> | null = null;
  /** Log compaction that a written snapshot allows; the loop does it before its next batch. */
  private compactionDue: number | null = null;
  /** Peer messages dropped because the inbox was full (the loop is stalled on a slow disk). */
  droppedInbound = 0;
  /** Per-batch timing in the log at level trace (where the time of a slow write goes); checked once. */
  private readonly traceReady: boolean;
  /** Term and vote known to be on disk (see the early send in handleReady). */
  private durableTerm: number;
  private durableVote: number;

  constructor(private readonly options: DriverOptions) {
    this.raft = options.raft;
    this.confState = options.raft.confState();
    const snapshot = options.storage.snapshot();
    this.lastSnapshotIndex = snapshot.metadata.index;
    this.lastSnapshotBytes = snapshot.data.length;
    this.traceReady = options.logger.isLevelEnabled("trace");
    const { hardState } = options.storage.initialState();
    this.durableTerm = hardState.term;
    this.durableVote = hardState.vote;
  }

  start(): void {
    this.ticker = setInterval(() => {
      this.pendingTicks++;
      this.schedule();
    }, this.options.tickMs);
    this.schedule();
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Peer messages, stepped into the core at the next turn of the loop. */
  receive(messages: readonly Message[]): void {
    if (this.stopped) return;
    if (this.inbox.length + messages.length > MAX_INBOX_MESSAGES) {
      this.droppedInbound += messages.length;
      return;
    }
    for (const m of messages) this.inbox.push(m);
    this.schedule();
  }

  /** Runs `op` against the core inside the loop (never between ready() and advance()); rejects with its throw. */
  run(op: (raft: RaftNode) => void): Promise<void> {
    if (this.stopped) return Promise.reject(new ServerStoppedError());
    return new Promise<void>((resolve, reject) => {
      this.ops.push({
        run: () => {
          try {
            op(this.raft);
            resolve();
          } catch (error) {
            reject(error);
          }
        },
        reject,
      });
      this.schedule();
    });
  }

  currentConfState(): ConfState {
    return this.confState;
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.loop();
    });
  }

  private async loop(): Promise<void> {
    if (this.stopped) return;
    this.running = true;
    try {
      if (this.compactionDue !== null) this.compactLog(this.compactionDue);
      for (;;) {
        this.drainInputs();
        if (this.stopped || !this.raft.hasReady()) break;
        const rd = this.raft.ready();
        const startedMs = this.traceReady ? performance.now() : 0;
        await this.handleReady(rd);
        if (this.traceReady) this.trace(rd, performance.now() - startedMs);
        if (this.stopped) break;
        this.raft.advance(rd);
      }
      if (!this.stopped && this.snapshotDue()) this.startSnapshot();
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.running = false;
    }
    if (this.inbox.length > 0 || this.ops.length > 0 || this.pendingTicks > 0 || this.raft.hasReady()) {
      this.schedule();
    }
  }

  private drainInputs(): void {
    // Messages first: what the peers said while the loop waited counts as activity before the clock moves on.
    if (this.inbox.length > 0) {
      const messages = this.inbox;
      this.inbox = [];
      for (const m of messages) this.raft.step(m);
    }
    const ticks = Math.min(this.pendingTicks, MAX_TICKS_PER_TURN);
    this.pendingTicks = 0;
    for (let i = 0; i < ticks; i++) this.raft.tick();
    if (this.ops.length > 0) {
      const ops = this.ops;
      this.ops = [];
      for (const op of ops) op.run();
    }
  }

  private trace(rd: Ready, tookMs: number): void {
    this.options.logger.trace(
      {
        entries: rd.entries.length,
        committed: rd.committedEntries.length,
        messages: rd.messages.map((m) => m.type).join(","),
        sync: rd.mustSync,
        tookMs: Math.round(tookMs * 100) / 100,
      },
      "ready handled",
    );
  }

  private async handleReady(rd: Ready): Promise<void> {
    const { storage, persistence, hooks, metrics } = this.options;
    if (rd.softState !== null) hooks.onSoftState(rd.softState);
    if (rd.snapshot !== null) {
      // One snapshot at a time on disk: the leader's waits for this member's own to be written.
      if (this.snapshotWrite !== null) await this.snapshotWrite;
      if (this.stopped) return;
      await persistence.saveSnapshot(rd.snapshot);
      storage.applySnapshot(rd.snapshot);
      this.restore(rd.snapshot);
    }
    // The leader may replicate its new entries while it writes them itself (Raft thesis §10.2.1; etcd does the
    // same): followers only acknowledge what THEY made durable, and no acknowledgement is stepped into the core
    // before this batch's own fsync completed (inputs wait for the next turn of the loop), so nothing is committed
    // or applied on the strength of the leader's unsynced copy. Never when this batch changes the term or the
    // vote: those must be durable before the leader speaks in the new term.
    let sentEarly = false;
    // A leader's Ready that only commits carries the commit notices for the followers: the clients waiting for
    // those entries are answered first (each notice is a socket write that wakes a peer, ~0.1 ms here), then the
    // notices go out. Not when a membership change commits: applying it may drop a peer the notice is for.
    const answerClientsFirst =
      this.raft.role === "leader" &&
      rd.entries.length === 0 &&
      rd.committedEntries.length > 0 &&
      rd.snapshot === null &&
      rd.committedEntries.every((e) => e.type !== "confChange") &&
      rd.messages.every((m) => m.type === "app" || m.type === "heartbeat");
    if (
      !answerClientsFirst &&
      this.raft.role === "leader" &&
      rd.messages.length > 0 &&
      (rd.hardState === null || (rd.hardState.term === this.durableTerm && rd.hardState.vote === this.durableVote))
    ) {
      const early = rd.messages.filter((m) => m.type === "app" || m.type === "heartbeat");
      if (early.length === rd.messages.length) {
        hooks.send(rd.messages);
        sentEarly = true;
      } else if (early.length > 0) {
        hooks.send(early);
        const rest = rd.messages.filter((m) => m.type !== "app" && m.type !== "heartbeat");
        rd = { ...rd, messages: rest };
      }
    }
    // Committed entries already on this disk from earlier batches (and not in a suffix this batch replaces) are
    // applied now, while this batch's fsync runs: waiting for it would add a whole fsync to every commit once the
    // pipeline is full. Committed entries that arrive with this batch still wait for it (step 4 of the contract).
    const firstNew = rd.entries[0]?.index ?? Number.POSITIVE_INFINITY;
    const durableLimit = Math.min(storage.lastIndex(), firstNew - 1);
    let appliedEarly = 0;
    while (appliedEarly < rd.committedEntries.length && rd.committedEntries[appliedEarly]!.index <= durableLimit) {
      this.apply(rd.committedEntries[appliedEarly]!);
      appliedEarly++;
    }
    if (appliedEarly > 0) this.reportApplied(rd.committedEntries[appliedEarly - 1]!.index);
    if (rd.entries.length > 0 || rd.hardState !== null) {
      const startedNs = process.hrtime.bigint();
      await persistence.save(rd.hardState, rd.entries, rd.mustSync);
      if (rd.mustSync) metrics.walFsyncSeconds.observe(Number(process.hrtime.bigint() - startedNs) / 1e9);
      storage.append(rd.entries);
      if (rd.hardState !== null) {
        this.durableTerm = rd.hardState.term;
        this.durableVote = rd.hardState.vote;
        storage.setHardState(rd.hardState);
        metrics.term.set(rd.hardState.term);
        metrics.commitIndex.set(rd.hardState.commit);
      }
    }
    if (this.stopped) return;
    if (!sentEarly && !answerClientsFirst && rd.messages.length > 0) hooks.send(rd.messages);
    for (let i = appliedEarly; i < rd.committedEntries.length; i++) this.apply(rd.committedEntries[i]!);
    if (rd.committedEntries.length > appliedEarly) this.reportApplied(rd.committedEntries.at(-1)!.index);
    for (const rs of rd.readStates) hooks.onReadState(rs.context, rs.index);
    if (answerClientsFirst && rd.messages.length > 0) {
      // The answers are written by the requests' continuations (promise jobs): let them all run, then send.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.stopped) hooks.send(rd.messages);
    }
  }

  private reportApplied(index: number): void {
    this.options.metrics.appliedIndex.set(index);
    this.options.hooks.onApplied(index);
  }

  private apply(entry: Entry): void {
    const { kv, members, hooks } = this.options;
    // Entries already folded into a restored snapshot must not be applied twice.
    if (entry.index <= kv.appliedIndex) return;
    this.bytesAppliedSinceSnapshot += entry.data.length;
    if (entry.type === "confChange") {
      const cc = decodeConfChange(entry.data);
      this.confState = this.raft.applyConfChange(cc);
      members.applyConfChange(cc);
      kv.markApplied(entry.index);
      hooks.onConfChange(cc, this.confState);
      return;
    }
    if (entry.data.length === 0) {
      kv.markApplied(entry.index);
      return;
    }
    this.options.metrics.proposalsApplied.inc();
    hooks.onEntry(entry);
    // The hook applies it to the store (it needs the result); a hook that did not must still advance the index.
    if (kv.appliedIndex < entry.index) kv.markApplied(entry.index);
  }

  private restore(snapshot: Snapshot): void {
    const { header, kv } = decodeSnapshotData(snapshot.data);
    this.options.kv.restore(kv);
    this.options.members.replaceWith(header.members, header.removed);
    this.confState = snapshot.metadata.confState;
    this.lastSnapshotIndex = snapshot.metadata.index;
    this.lastSnapshotBytes = snapshot.data.length;
    this.bytesAppliedSinceSnapshot = 0;
    this.compactionDue = null;
    this.options.metrics.snapshotsRestored.inc();
    this.options.logger.info(
      { index: snapshot.metadata.index, revision: this.options.kv.revision, members: header.members.length },
      "restored the store from a snapshot",
    );
    this.options.hooks.onRestored();
  }

  /** The policy says so, every applied entry is on this disk, and no snapshot is being written. */
  private snapshotDue(): boolean {
    const applied = this.options.kv.appliedIndex;
    if (this.snapshotWrite !== null || applied > this.options.storage.lastIndex()) return false;
    return snapshotDue(this.options.snapshotPolicy, {
      entries: applied - this.lastSnapshotIndex,
      entryBytes: this.bytesAppliedSinceSnapshot,
      snapshotBytes: this.lastSnapshotBytes,
    });
  }

  /**
   * Snapshots the store at the applied index, on the loop (the store must not change while it is encoded), then
   * writes it while the loop goes on: the file, its fsync and the WAL's record took the loop away from every request
   * and peer for as long as the disk needed (15-25 ms at each snapshot in a probe of a 3-member cluster whose one key
   * had 10,000 revisions; the encoding took another 25-40). Writing behind the loop is safe: the snapshot only holds
   * applied, committed entries, and a crash before it is on disk leaves the log that it summarizes. The log behind
   * it is compacted only once it is written.
   * The encoding stays in one piece: spread over many turns, its CPU slowed every write of those turns instead of
   * one (cluster benchmark with 100,000 keys: follower watch p99 ~4 -> 6-15 ms).
   */
  private startSnapshot(): void {
    const { kv, storage, members } = this.options;
    const applied = kv.appliedIndex;
    const startedMs = performance.now();
    const data = encodeSnapshotData(
      { version: 1, members: members.list(), removed: members.removedIds() },
      (headroom) => kv.snapshot(headroom),
    );
    const snapshot = storage.createSnapshot(applied, this.confState, data);
    const encodedMs = performance.now() - startedMs;
    // The entries applied from now on are the ones the next snapshot will stand for.
    this.lastSnapshotBytes = data.length;
    this.bytesAppliedSinceSnapshot = 0;
    this.snapshotWrite = this.writeSnapshot(snapshot, startedMs, encodedMs)
      .catch((error: unknown) => this.fail(error as Error))
      .finally(() => {
        this.snapshotWrite = null;
        this.schedule();
      });
  }

  private async writeSnapshot(snapshot: Snapshot, startedMs: number, encodedMs: number): Promise<void> {
    const { persistence, logger, metrics } = this.options;
    const { index } = snapshot.metadata;
    await persistence.saveSnapshot(snapshot);
    if (this.stopped) return;
    this.lastSnapshotIndex = index;
    metrics.snapshotsTaken.inc();
    const compactTo = index - this.options.snapshotKeepEntries;
    this.compactionDue = compactTo;
    await persistence.releaseTo(compactTo);
    logger.info(
      {
        index,
        bytes: snapshot.data.length,
        encodeMs: Math.round(encodedMs),
        ms: Math.round(performance.now() - startedMs),
      },
      "snapshot taken",
    );
  }

  /** Drops the entries a written snapshot made unnecessary from the in-memory log (between batches, on the loop). */
  private compactLog(compactTo: number): void {
    this.compactionDue = null;
    const { storage } = this.options;
    if (compactTo > storage.firstIndex()) storage.compact(compactTo);
  }

  /** A storage failure: nothing more is persisted or applied, the replica stops. */
  private fail(error: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.stopped = true;
    this.options.logger.fatal({ err: error }, "raft driver failed; the replica stops");
    this.options.hooks.onFatal(error);
  }

  /** Stops ticking and stepping; pending inputs are dropped. */
  stop(): void {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.inbox = [];
    const ops = this.ops;
    this.ops = [];
    for (const op of ops) op.reject(new ServerStoppedError());
  }

  /** Resolves once the loop is idle and no snapshot is being written (after stop: once they finished). */
  async idle(): Promise<void> {
    while (this.running || this.scheduled || this.snapshotWrite !== null) await new Promise((r) => setTimeout(r, 1));
  }
}
