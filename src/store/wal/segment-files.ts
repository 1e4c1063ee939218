// Segment files on disk: names (<seq>-<firstIndex>.wal in hex, so `ls` order is log order), listing with
// sequence checks, and creating a new segment with its prelude (header, current hard state, latest snapshot
// metadata: every segment is self-sufficient once older ones are purged).
import { writeSync, writevSync } from "node:fs";
import { type FileHandle, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { syncDirectory } from "../../directory-sync.js";
import type { HardState, SnapshotMetadata } from "../raft/types.js";
import { WalCorruptError } from "./errors.js";
import { encodeHardState, encodeSegmentHeader, encodeSnapshotMetadata } from "./payloads.js";
import { encodeRecord, RecordType } from "./record.js";

const NAME_PATTERN = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export interface SegmentInfo {
  seq: number;
  firstIndex: number;
  path: string;
  name: string;
}

export function segmentName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, "0")}-${firstIndex.toString(16).padStart(16, "0")}.wal`;
}

/** Segments in `dir`, by sequence number. A hole in the sequence is corruption (a deleted middle segment). */
export async function listSegments(dir: string): Promise<SegmentInfo[]> {
  const segments: SegmentInfo[] = [];
  for (const name of await readdir(dir)) {
    const match = NAME_PATTERN.exec(name);
    if (!match) continue;
    segments.push({
      seq: Number.parseInt(match[1]!, 16),
      firstIndex: Number.parseInt(match[2]!, 16),
      path: join(dir, name),
      name,
    });
  }
  segments.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segments.length; i++) {
    const previous = segments[i - 1]!;
    const segment = segments[i]!;
    if (segment.seq !== previous.seq + 1) {
      throw new WalCorruptError(segment.path, 0, `segment ${previous.seq + 1} is missing (found ${segment.seq} next)`);
    }
  }
  return segments;
}

/** The records every segment starts with. */
export function segmentPrelude(
  seq: number,
  firstIndex: number,
  hardState: HardState | null,
  snapshot: SnapshotMetadata | null,
): Buffer[] {
  const records = [encodeRecord(RecordType.SegmentHeader, encodeSegmentHeader({ seq, firstIndex }))];
  if (hardState !== null) records.push(encodeRecord(RecordType.HardState, encodeHardState(hardState)));
  if (snapshot !== null) records.push(encodeRecord(RecordType.Snapshot, encodeSnapshotMetadata(snapshot)));
  return records;
}

/**
 * Creates (or rewrites, `truncate`) a segment holding only its prelude, synced, with the directory entry synced.
 * Returns the open handle and the append position.
 */
export async function createSegment(
  dir: string,
  seq: number,
  firstIndex: number,
  hardState: HardState | null,
  snapshot: SnapshotMetadata | null,
): Promise<{ info: SegmentInfo; handle: FileHandle; position: number }> {
  const name = segmentName(seq, firstIndex);
  const path = join(dir, name);
  const handle = await open(path, "w", 0o600);
  try {
    const prelude = segmentPrelude(seq, firstIndex, hardState, snapshot);
    // Whole or failed: after a short write (a nearly full disk) appends would land inside a cut prelude record.
    const position = await writeFully(handle, prelude, 0);
    await handle.sync();
    await syncDirectory(dir);
    return { info: { seq, firstIndex, path, name }, handle, position };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Writes all of `buffers` at `position` (looping over short writes). Returns the new position. */
export async function writeFully(handle: FileHandle, buffers: Buffer[], position: number): Promise<number> {
  let total = 0;
  for (const b of buffers) total += b.length;
  let written = (await handle.writev(buffers, position)).bytesWritten;
  if (written < total) {
    // Rare: finish with a single contiguous buffer.
    const rest = Buffer.concat(buffers).subarray(written);
    let offset = 0;
    while (offset < rest.length) {
      const { bytesWritten } = await handle.write(rest, offset, rest.length - offset, position + written + offset);
      offset += bytesWritten;
    }
    written = total;
  }
  return position + written;
}

/** `writeFully` on the calling thread, for a file descriptor. */
export function writeFullySync(fd: number, buffers: Buffer[], position: number): number {
  let total = 0;
  for (const b of buffers) total += b.length;
  const written = writevSync(fd, buffers, position);
  if (written < total) {
    const rest = Buffer.concat(buffers).subarray(written);
    let offset = 0;
    while (offset < rest.length)
      offset += writeSync(fd, rest, offset, rest.length - offset, position + written + offset);
  }
  return position + total;
}
