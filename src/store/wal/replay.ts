// Rebuilds the Raft state from the records of all segments, in order: the latest hard state, the latest
// snapshot metadata, and the entry log with Raft's overwrite rule (an entry at an index <= the last index
// replaces the suffix from that index on). Anything that breaks the log's shape is corruption with a place.
import type { Entry, HardState, SnapshotMetadata } from "../raft/types.js";
import { WalCorruptError } from "./errors.js";
import { decodeEntry, decodeHardState, decodeSeal, decodeSegmentHeader, decodeSnapshotMetadata } from "./payloads.js";
import { RecordType, type ScannedRecord } from "./record.js";
import type { SegmentInfo } from "./segment-files.js";

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: 0, commit: 0 };

export class ReplayState {
  hardState: HardState = EMPTY_HARD_STATE;
  snapshot: SnapshotMetadata | null = null;
  /** Contiguous entries; entries[i].index === firstIndex + i. */
  entries: Entry[] = [];
  firstIndex = 1;

  get lastIndex(): number {
    return this.firstIndex + this.entries.length - 1;
  }

  /** Applies one segment's records; returns whether the segment ends with a seal and whether it holds entries. */
  replaySegment(segment: SegmentInfo, records: readonly ScannedRecord[]): { sealed: boolean; hasEntries: boolean } {
    let sealed = false;
    let hasEntries = false;
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const place = { file: segment.path, offset: record.offset };
      if (sealed) throw new WalCorruptError(segment.path, record.offset, "record after the segment's seal");
      if ((i === 0) !== (record.type === RecordType.SegmentHeader)) {
        throw new WalCorruptError(segment.path, record.offset, "a segment must start with exactly one header");
      }
      switch (record.type) {
        case RecordType.SegmentHeader: {
          const header = decodeSegmentHeader(record.payload, place);
          if (header.seq !== segment.seq || header.firstIndex !== segment.firstIndex) {
            throw new WalCorruptError(segment.path, record.offset, "header does not match the file name");
          }
          break;
        }
        case RecordType.Entry:
          hasEntries = true;
          this.addEntry(decodeEntry(record.payload, place), segment.path, record.offset);
          break;
        case RecordType.HardState:
          this.hardState = decodeHardState(record.payload, place);
          break;
        case RecordType.Snapshot:
          this.addSnapshot(decodeSnapshotMetadata(record.payload, place));
          break;
        case RecordType.Seal: {
          const next = decodeSeal(record.payload, place);
          if (next !== segment.seq + 1) throw new WalCorruptError(segment.path, record.offset, `seal names ${next}`);
          sealed = true;
          break;
        }
      }
    }
    return { sealed, hasEntries };
  }

  private addEntry(entry: Entry, file: string, offset: number): void {
    if (this.entries.length === 0) {
      // First entry (or first after a snapshot). It may start beyond the snapshot known so far: older segments
      // were purged under a later snapshot, recorded further on. `entriesAfterSnapshot` checks the final shape.
      this.firstIndex = entry.index;
      this.entries.push(entry);
      return;
    }
    if (entry.index === this.lastIndex + 1) {
      this.entries.push(entry);
    } else if (entry.index > this.lastIndex + 1) {
      throw new WalCorruptError(file, offset, `entry ${entry.index} leaves a gap after entry ${this.lastIndex}`);
    } else if (entry.index >= this.firstIndex) {
      // Raft overwrote a suffix: drop the replaced entries.
      this.entries.length = entry.index - this.firstIndex;
      this.entries.push(entry);
    } else {
      // Overwrites everything we hold (only possible right after a purge of older segments).
      this.firstIndex = entry.index;
      this.entries = [entry];
    }
  }

  private addSnapshot(meta: SnapshotMetadata): void {
    if (this.snapshot !== null && meta.index < this.snapshot.index) return;
    this.snapshot = meta;
    const atSnapshot = this.entries[meta.index - this.firstIndex];
    if (meta.index >= this.lastIndex || (atSnapshot !== undefined && atSnapshot.term !== meta.term)) {
      // The snapshot covers the whole log, or our log diverged from it (a snapshot received from the leader):
      // later entries start after it.
      this.entries = [];
      this.firstIndex = meta.index + 1;
    }
  }

  /** The entries after the snapshot (the ones Raft's storage holds), checked to continue it without a gap. */
  entriesAfterSnapshot(firstSegment: string): Entry[] {
    const snapshotIndex = this.snapshot?.index ?? 0;
    if (this.entries.length > 0 && this.firstIndex > snapshotIndex + 1) {
      throw new WalCorruptError(
        firstSegment,
        0,
        `log starts at entry ${this.firstIndex} but the snapshot only covers up to ${snapshotIndex}`,
      );
    }
    const skip = Math.max(0, snapshotIndex + 1 - this.firstIndex);
    return this.entries.slice(skip);
  }
}
