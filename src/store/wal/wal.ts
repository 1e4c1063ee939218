// The write-ahead log of one Raft node: entries, hard state and snapshot markers in append-only segment files.
//
// Group commit: `append` only queues encoded records; one flush loop writes everything queued since the last
// flush with a single writev and ONE fdatasync, then resolves those appends. Concurrent appenders therefore
// share syncs, and no promise resolves before its bytes are on disk. Order of appends is the order of calls.
//
// Layout: <dir>/wal/<seq>-<firstIndex>.wal segments, <dir>/snap/<term>-<index>.snap snapshots.
import assert from "node:assert";
import { fdatasyncSync, ftruncateSync } from "node:fs";
import { access, type FileHandle, mkdir, open, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { syncDirectory } from "../../directory-sync.js";
import { type Logger, silentLogger } from "../../log.js";
import type { Entry, HardState, Snapshot, SnapshotMetadata } from "../raft/types.js";
import { SnapshotStore, snapshotFileName } from "../snapshot/snapshot-store.js";
import { lockDirectory } from "./dir-lock.js";
import { WalBusyError, WalClosedError, WalCorruptError, WalFailedError } from "./errors.js";
import { encodeHardState, encodeSeal, encodeSnapshotMetadata, entryPayloadBytes, writeEntry } from "./payloads.js";
import { encodeRecord, encodeRecordWith, MAX_RECORD_PAYLOAD_BYTES, RecordType, scanRecords } from "./record.js";
import { EMPTY_HARD_STATE, ReplayState } from "./replay.js";
import { createSegment, listSegments, type SegmentInfo, writeFully, writeFullySync } from "./segment-files.js";

export interface WalOptions {
  /** A segment is closed and a new one started once it would exceed this size. */
  segmentBytes: number;
  /** Appends waiting for their fsync may hold at most this many bytes; more is refused (WalBusyError). */
  maxPendingBytes: number;
  /** Entries kept behind the latest snapshot when purging segments (for slow followers). */
  keepTailEntries: number;
  /** Snapshot files kept (the newest ones). */
  keepSnapshots: number;
  /**
   * A flush of at most this many bytes is written and fdatasynced on the calling thread, at once, instead of on
   * the thread pool after a turn of the event loop (0: never). For a caller that already batches (the Raft driver
   * hands over one batch per turn and waits for it): for a small batch the two thread-pool round trips and the
   * extra turn cost more than the blocked loop, most of all on a busy machine where each hand-off waits for a
   * core. A large batch means many clients at once: it goes to the thread pool so the loop parses the next
   * requests while the disk syncs. Independent appenders want 0 (they group up while the loop turns).
   */
  inlineSyncMaxBytes: number;
  /**
   * The newest segment file is kept this many bytes longer than its records (zeros, by ftruncate; 0: never).
   * An append that grows the file makes every fdatasync also commit the new file size through the journal; one
   * that lands in space already there does not. Measured on ext4 here, the fdatasync of a 200-byte append:
   * p50 0.20 -> 0.10 ms. Replay reads the zeros too, so this is a step, not the whole segment.
   */
  preallocateBytes: number;
  logger: Logger;
}

export const DEFAULT_WAL_OPTIONS: WalOptions = {
  segmentBytes: 64 * 1024 * 1024,
  maxPendingBytes: 64 * 1024 * 1024,
  keepTailEntries: 5000,
  keepSnapshots: 2,
  inlineSyncMaxBytes: 0,
  preallocateBytes: 4 * 1024 * 1024,
  logger: silentLogger(),
};

/** What the WAL held at start-up: hand it to Raft's storage and the state machine. */
export interface WalReplay {
  wal: Wal;
  hardState: HardState;
  /** The newest snapshot (its data verified), or null. */
  snapshot: Snapshot | null;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[];
}

interface PendingWrite {
  buffers: Buffer[];
  bytes: number;
  lastEntryIndex: number | null;
  hardState: HardState | null;
  snapshot: SnapshotMetadata | null;
  resolve: () => void;
  reject: (error: Error) => void;
}

const MARKER_FILE = "VIGIE_WAL";
const SNAPSHOT_DIR = "snap";

/** Where the snapshot with this metadata lives in data dir `dir` (for error messages of the snapshot's readers). */
export function snapshotFilePath(dir: string, meta: { term: number; index: number }): string {
  return join(dir, SNAPSHOT_DIR, snapshotFileName(meta));
}

export class Wal {
  private pending: PendingWrite[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | null = null;
  private failure: Error | null = null;
  private closed = false;
  /** Releases the directory lock (set by `open`). */
  private releaseLock: () => Promise<void> = async () => {};
  /** Index of the last entry handed to `append` (queued, maybe not yet written): the next must not leave a gap. */
  private acceptedLastIndex: number;
  /** Size of the current segment's prelude: a segment holding only that is never rotated (no empty segments). */
  private preludeBytes = 0;
  /** Size of the current segment file: records up to `position`, then preallocated zeros. */
  private fileBytes: number;

  private constructor(
    private readonly walDir: string,
    private readonly snapshots: SnapshotStore,
    private readonly options: WalOptions,
    private segments: SegmentInfo[],
    private handle: FileHandle,
    private position: number,
    fileBytes: number,
    private writtenLastIndex: number,
    private writtenHardState: HardState | null,
    private writtenSnapshot: SnapshotMetadata | null,
  ) {
    this.acceptedLastIndex = writtenLastIndex;
    this.fileBytes = fileBytes;
  }

  /** Opens (or creates) the WAL in `dir` and replays it. Throws WalCorruptError / SnapshotCorruptError. */
  static async open(dir: string, options: Partial<WalOptions> = {}): Promise<WalReplay> {
    const walDir = join(dir, "wal");
    // Private, as etcd does (0700): the log holds every value written, secrets included.
    const createdDirs = (await mkdir(walDir, { recursive: true, mode: 0o700 })) !== undefined;
    const release = await lockDirectory(walDir);
    try {
      const replay = await Wal.replay(dir, walDir, createdDirs, { ...DEFAULT_WAL_OPTIONS, ...options });
      replay.wal.releaseLock = release;
      return replay;
    } catch (error) {
      await release();
      throw error;
    }
  }

  private static async replay(dir: string, walDir: string, createdDirs: boolean, opts: WalOptions): Promise<WalReplay> {
    const log = opts.logger.child({ component: "wal" });
    const snapshots = new SnapshotStore(join(dir, SNAPSHOT_DIR));
    const createdSnapDir = await snapshots.init();
    // New directories must be durable entries of their parent before anything inside them counts as synced
    // (snap/ alone too: a data dir whose snap/ was deleted would otherwise lose the next snapshot on power loss).
    if (createdDirs || createdSnapDir) await syncDirectory(dir);
    const segments = await listSegments(walDir);
    const markerPath = join(walDir, MARKER_FILE);
    if (segments.length === 0) {
      if (await exists(markerPath)) throw new WalCorruptError(walDir, 0, "every segment file is missing");
      const created = await createSegment(walDir, 0, 1, null, null);
      await writeFile(markerPath, "vigie write-ahead log\n", { mode: 0o600 });
      await syncDirectory(walDir);
      log.info({ dir }, "created an empty WAL");
      const { info, handle, position } = created;
      const wal = new Wal(walDir, snapshots, opts, [info], handle, position, position, 0, null, null);
      return { wal, hardState: EMPTY_HARD_STATE, snapshot: null, entries: [] };
    }
    const state = new ReplayState();
    let previousUnsealed = false;
    let previousValidBytes = 0;
    let lastValidBytes = 0;
    let lastHasEntries = false;
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!;
      const isLast = i === segments.length - 1;
      const content = await readFile(segment.path);
      // The one before the newest may end in a torn seal (a crash while rotating): it is then unsealed, and
      // repaired below like one whose seal never started.
      const scan = scanRecords(content, segment.path, i >= segments.length - 2);
      // A segment starts right after the last entry its predecessor held when it was created. Fewer entries there
      // now means synced records were lost (zeroed blocks read as preallocated space end the records early).
      if (i > 0 && state.lastIndex < segment.firstIndex - 1) {
        const previous = segments[i - 1]!;
        throw new WalCorruptError(
          previous.path,
          0,
          `its entries end at ${state.lastIndex} but the next segment starts at entry ${segment.firstIndex}`,
        );
      }
      if (scan.torn) {
        log.warn({ file: segment.path, offset: scan.validBytes }, "truncating a torn record at the WAL's tail");
      }
      if (isLast && scan.records.length === 0) {
        // Cut inside its header: the crash happened while creating it. It holds nothing; recreate it below.
        lastValidBytes = 0;
        break;
      }
      const { sealed, hasEntries } = state.replaySegment(segment, scan.records);
      if (isLast) {
        if (sealed) {
          throw new WalCorruptError(segment.path, scan.validBytes, `sealed, but segment ${segment.seq + 1} is missing`);
        }
        lastValidBytes = scan.validBytes;
        lastHasEntries = hasEntries;
        if (scan.torn) {
          await truncate(segment.path, scan.validBytes);
        }
      } else if (!sealed) {
        // Allowed only for a crash between creating the next segment and sealing this one.
        if (i !== segments.length - 2) throw new WalCorruptError(segment.path, scan.validBytes, "segment not sealed");
        previousUnsealed = true;
        previousValidBytes = scan.validBytes;
      }
    }
    const last = segments[segments.length - 1]!;
    if (previousUnsealed && lastHasEntries) {
      throw new WalCorruptError(
        segments[segments.length - 2]!.path,
        0,
        "segment not sealed but the next one has entries",
      );
    }
    const hardState = state.hardState;
    const snapshotMeta = state.snapshot;
    const entries = state.entriesAfterSnapshot(segments[0]!.path);
    const snapshot = snapshotMeta === null ? null : await snapshots.load(snapshotMeta);
    let handle: FileHandle;
    let position: number;
    let fileBytes: number;
    if (lastValidBytes === 0 || previousUnsealed) {
      // Rewrite the newest segment's prelude so it is self-sufficient, then seal its predecessor.
      const created = await createSegment(walDir, last.seq, last.firstIndex, hardState, snapshotMeta);
      handle = created.handle;
      position = created.position;
      fileBytes = position;
      const previous = segments[segments.length - 2];
      if (previous !== undefined && previousUnsealed) await sealSegment(previous, previousValidBytes);
    } else {
      handle = await open(last.path, "r+");
      await handle.sync();
      position = lastValidBytes;
      fileBytes = (await handle.stat()).size;
    }
    const lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : (snapshotMeta?.index ?? 0);
    log.info({ segments: segments.length, entries: entries.length, lastIndex }, "WAL replayed");
    const wal = new Wal(
      walDir,
      snapshots,
      opts,
      segments,
      handle,
      position,
      fileBytes,
      lastIndex,
      hardState,
      snapshotMeta,
    );
    return { wal, hardState, snapshot, entries };
  }

  /**
   * Appends entries (an entry at an index <= the last one replaces the log from there, as Raft requires) and
   * the hard state, durably: resolves only after fdatasync. Rejects with WalBusyError when the queue is full,
   * WalFailedError after any I/O failure.
   */
  append(entries: readonly Entry[], hardState: HardState | null = null): Promise<void> {
    // A gap would make the log unreadable at the next start: refuse it now (a programmer error in the caller).
    let expectedMax = this.acceptedLastIndex + 1;
    for (const entry of entries) {
      assert(
        entry.index >= 1 && entry.index <= expectedMax,
        `WAL append of entry ${entry.index} after ${expectedMax - 1}`,
      );
      // The request limits keep entries far smaller; one over the limit would be written, synced, acknowledged,
      // and then refused by replay as corruption at the next start.
      assert(
        entryPayloadBytes(entry) <= MAX_RECORD_PAYLOAD_BYTES,
        `WAL append of entry ${entry.index}: ${entry.data.length} bytes, over the WAL record limit`,
      );
      expectedMax = entry.index + 1;
    }
    const lastEntry = entries[entries.length - 1];
    if (lastEntry !== undefined && !this.closed && this.failure === null) this.acceptedLastIndex = lastEntry.index;
    const buffers: Buffer[] = [];
    for (const entry of entries) {
      buffers.push(
        encodeRecordWith(RecordType.Entry, entryPayloadBytes(entry), (out, offset) => writeEntry(entry, out, offset)),
      );
    }
    if (hardState !== null) buffers.push(encodeRecord(RecordType.HardState, encodeHardState(hardState)));
    return this.enqueue(buffers, lastEntry === undefined ? null : lastEntry.index, hardState, null);
  }

  /**
   * Stores a snapshot: the file first (atomic, synced), then its marker in the log, so after a crash the log
   * never names a snapshot that is not on disk. Old snapshot files beyond `keepSnapshots` are removed.
   */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.checkUsable();
    const meta = snapshot.metadata;
    // Entries after a snapshot received beyond the log start at its index + 1.
    this.acceptedLastIndex = Math.max(this.acceptedLastIndex, meta.index);
    await this.snapshots.save(snapshot);
    await this.enqueue([encodeRecord(RecordType.Snapshot, encodeSnapshotMetadata(meta))], null, null, meta);
    await this.snapshots.purge(this.options.keepSnapshots, meta);
  }

  /**
   * The caller no longer needs entries <= `index`. Deletes whole segments whose entries are all at or below
   * min(index, latest snapshot index - keepTailEntries); the newest segment is never deleted. Returns the
   * number of segments removed.
   */
  async releaseTo(index: number): Promise<number> {
    this.checkUsable();
    const snapshotIndex = this.writtenSnapshot?.index ?? 0;
    const limit = Math.min(index, snapshotIndex - this.options.keepTailEntries);
    const doomed: SegmentInfo[] = [];
    // Every entry of segment i has an index below segment i+1's firstIndex (it was the next index when i+1 began).
    for (let i = 0; i < this.segments.length - 1; i++) {
      if (this.segments[i + 1]!.firstIndex - 1 > limit) break;
      doomed.push(this.segments[i]!);
    }
    if (doomed.length === 0) return 0;
    // Drop from the list first: a rotation meanwhile only appends at the end.
    this.segments = this.segments.slice(doomed.length);
    for (const segment of doomed) await rm(segment.path, { force: true });
    await syncDirectory(this.walDir);
    this.options.logger.child({ component: "wal" }).info({ removed: doomed.length, upTo: limit }, "purged segments");
    return doomed.length;
  }

  /** Index of the last entry handed to `append` and written (or the snapshot index). */
  get lastIndex(): number {
    return this.writtenLastIndex;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Waits for queued appends, then closes the file. Later calls reject with WalClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing !== null) await this.flushing;
    await this.handle.close();
    await this.releaseLock();
  }

  private checkUsable(): void {
    if (this.closed) throw new WalClosedError();
    if (this.failure !== null) throw this.failure;
  }

  private enqueue(
    buffers: Buffer[],
    lastEntryIndex: number | null,
    hardState: HardState | null,
    snapshot: SnapshotMetadata | null,
  ): Promise<void> {
    if (this.closed) return Promise.reject(new WalClosedError());
    if (this.failure !== null) return Promise.reject(this.failure);
    let bytes = 0;
    for (const b of buffers) bytes += b.length;
    if (this.pendingBytes > 0 && this.pendingBytes + bytes > this.options.maxPendingBytes) {
      return Promise.reject(new WalBusyError(this.pendingBytes + bytes, this.options.maxPendingBytes));
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ buffers, bytes, lastEntryIndex, hardState, snapshot, resolve, reject });
      this.pendingBytes += bytes;
      this.startFlush();
    });
  }

  private startFlush(): void {
    if (this.flushing !== null) return;
    if (this.pendingBytes <= this.options.inlineSyncMaxBytes && this.flushInline()) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
      // An append may have arrived between the loop's last check and now (its resolve ran first).
      if (this.pending.length > 0) this.startFlush();
    });
  }

  private async flushLoop(): Promise<void> {
    // Let appends issued in the same tick join the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.length > 0 && this.failure === null) {
      const { batch, buffers, bytes } = this.takePending();
      try {
        if (this.rotationDue(bytes)) await this.rotate();
        const preallocateTo = this.preallocationDue(bytes);
        if (preallocateTo !== null) {
          await this.handle.truncate(preallocateTo);
          this.fileBytes = preallocateTo;
        }
        this.position = await writeFully(this.handle, buffers, this.position);
        await this.handle.datasync();
      } catch (error) {
        this.failBatch(batch, error);
        return;
      }
      this.completeBatch(batch);
    }
  }

  /**
   * `inlineSyncMaxBytes`: writes and syncs everything queued, on this thread. False (nothing done) when the segment is
   * full: the asynchronous loop rotates it.
   */
  private flushInline(): boolean {
    if (this.failure !== null || this.rotationDue(this.pendingBytes)) return false;
    const { batch, buffers, bytes } = this.takePending();
    try {
      const preallocateTo = this.preallocationDue(bytes);
      if (preallocateTo !== null) {
        ftruncateSync(this.handle.fd, preallocateTo);
        this.fileBytes = preallocateTo;
      }
      this.position = writeFullySync(this.handle.fd, buffers, this.position);
      fdatasyncSync(this.handle.fd);
    } catch (error) {
      this.failBatch(batch, error);
      return true;
    }
    this.completeBatch(batch);
    return true;
  }

  /** Empties the queue: its appends, and their records in order for one write. */
  private takePending(): { batch: PendingWrite[]; buffers: Buffer[]; bytes: number } {
    const batch = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    const buffers: Buffer[] = [];
    for (const write of batch) for (const b of write.buffers) buffers.push(b);
    return { batch, buffers, bytes };
  }

  /** The size to extend the segment file to before appending `bytes`, or null when they fit in it already. */
  private preallocationDue(bytes: number): number | null {
    const end = this.position + bytes;
    if (end <= this.fileBytes || this.options.preallocateBytes === 0) return null;
    // Never past the segment limit by more than this append: rotation comes at that size anyway.
    return Math.max(end, Math.min(end + this.options.preallocateBytes, this.options.segmentBytes));
  }

  private rotationDue(bytes: number): boolean {
    return this.position + bytes > this.options.segmentBytes && this.segmentHasRecordsBeyondPrelude();
  }

  /** After any I/O failure the WAL refuses everything: what reached the disk is unknown. */
  private failBatch(batch: PendingWrite[], error: unknown): void {
    this.failure = new WalFailedError(`write or fsync failed: ${(error as Error).message}`, { cause: error });
    for (const write of [...batch, ...this.pending]) write.reject(this.failure);
    this.pending = [];
    this.pendingBytes = 0;
  }

  private completeBatch(batch: PendingWrite[]): void {
    for (const write of batch) {
      if (write.lastEntryIndex !== null) this.writtenLastIndex = write.lastEntryIndex;
      if (write.hardState !== null) this.writtenHardState = write.hardState;
      if (write.snapshot !== null && (this.writtenSnapshot?.index ?? -1) <= write.snapshot.index) {
        this.writtenSnapshot = write.snapshot;
        this.writtenLastIndex = Math.max(this.writtenLastIndex, write.snapshot.index);
      }
      write.resolve();
    }
  }

  private segmentHasRecordsBeyondPrelude(): boolean {
    return this.position > this.preludeBytes;
  }

  /** Starts the next segment (synced, with its prelude), then seals the current one. */
  private async rotate(): Promise<void> {
    const current = this.segments[this.segments.length - 1]!;
    const created = await createSegment(
      this.walDir,
      current.seq + 1,
      this.writtenLastIndex + 1,
      this.writtenHardState,
      this.writtenSnapshot,
    );
    const sealedBytes = await writeFully(
      this.handle,
      [encodeRecord(RecordType.Seal, encodeSeal(current.seq + 1))],
      this.position,
    );
    await this.handle.datasync();
    // Drop its preallocated zeros: replay reads every segment whole. Not synced: zeros left by a crash
    // before this lands are read as the end of the segment.
    await this.handle.truncate(sealedBytes);
    await this.handle.close();
    this.segments.push(created.info);
    this.handle = created.handle;
    this.position = created.position;
    this.fileBytes = created.position;
    this.preludeBytes = created.position;
  }
}

/** Seals a segment whose records end at `validBytes` (preallocated zeros may follow) and drops what follows. */
async function sealSegment(segment: SegmentInfo, validBytes: number): Promise<void> {
  const handle = await open(segment.path, "r+");
  try {
    const end = await writeFully(handle, [encodeRecord(RecordType.Seal, encodeSeal(segment.seq + 1))], validBytes);
    await handle.truncate(end);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
