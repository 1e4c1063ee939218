// Record framing of WAL segment files, and the scanner that tells a torn tail from real corruption.
//
//   offset 0  u32 LE  payload length
//   offset 4  u8      record type (never 0)
//   offset 5  u8      reserved, 0
//   offset 6  u16 LE  header check: low 16 bits of CRC-32C(bytes 0..5)
//   offset 8  ...     payload
//   then      u32 LE  CRC-32C(type byte, payload)
//
// The header check protects the length: a flipped bit there must read as corruption, never as "the record runs
// past the end of the file" (which is what a torn append looks like and would be silently truncated).
import { crc32c } from "./crc32c.js";
import { WalCorruptError } from "./errors.js";

export const RECORD_HEADER_BYTES = 8;
export const RECORD_TRAILER_BYTES = 4;
export const RECORD_OVERHEAD_BYTES = RECORD_HEADER_BYTES + RECORD_TRAILER_BYTES;
/** Largest payload accepted (a Raft entry is bounded far below this by the request limits). */
export const MAX_RECORD_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** Disks write whole sectors: a torn write leaves whole sectors of zeros. */
const SECTOR_BYTES = 512;

export const RecordType = {
  SegmentHeader: 1,
  Entry: 2,
  HardState: 3,
  Snapshot: 4,
  /** Last record of a segment that is followed by another one (names its sequence number). */
  Seal: 5,
} as const;
export type RecordTypeValue = (typeof RecordType)[keyof typeof RecordType];
const MAX_RECORD_TYPE = 5;

/** Frames `payload` as one record. */
export function encodeRecord(type: RecordTypeValue, payload: Uint8Array): Buffer {
  return encodeRecordWith(type, payload.length, (out, offset) => out.set(payload, offset));
}

/**
 * Frames a payload of `payloadBytes` that `writePayload` writes in place at `offset`: the record is one buffer and
 * the payload is never built apart and copied (an entry's record is as large as its data, written on every member).
 */
export function encodeRecordWith(
  type: RecordTypeValue,
  payloadBytes: number,
  writePayload: (out: Buffer, offset: number) => void,
): Buffer {
  const out = Buffer.allocUnsafe(RECORD_OVERHEAD_BYTES + payloadBytes);
  out.writeUInt32LE(payloadBytes, 0);
  out[4] = type;
  out[5] = 0;
  out.writeUInt16LE(crc32c(out, 0, 0, 6) & 0xffff, 6);
  writePayload(out, RECORD_HEADER_BYTES);
  const crc = crc32c(out, crc32c(out, 0, 4, 5), RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + payloadBytes);
  out.writeUInt32LE(crc, RECORD_HEADER_BYTES + payloadBytes);
  return out;
}

export interface ScannedRecord {
  type: RecordTypeValue;
  payload: Buffer;
  /** Byte offset of the record's header in the file. */
  offset: number;
}

export interface ScanResult {
  records: ScannedRecord[];
  /**
   * Length of the valid prefix: appends continue here, and the file is truncated to this when `torn`. Zeros
   * after it are space the WAL preallocated (or the filesystem allocated for an append that never landed).
   */
  validBytes: number;
  /** True when an incomplete record was found at the end (a write cut by a crash). */
  torn: boolean;
}

/**
 * Reads every record of a segment. `allowTornTail` (only for the newest segment) accepts an incomplete last
 * record; anything else that does not check out throws WalCorruptError naming `fileName` and the offset.
 */
export function scanRecords(data: Buffer, fileName: string, allowTornTail: boolean): ScanResult {
  const records: ScannedRecord[] = [];
  let offset = 0;
  while (offset < data.length) {
    // Only zeros from here on: the segment's preallocated space, nothing was ever written there.
    if (isZero(data, offset, data.length)) break;
    const problem = checkRecordAt(data, offset);
    if (problem === null) {
      const length = data.readUInt32LE(offset);
      records.push({
        type: data[offset + 4] as RecordTypeValue,
        payload: data.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length),
        offset,
      });
      offset += RECORD_OVERHEAD_BYTES + length;
      continue;
    }
    if (allowTornTail && problem.torn) return { records, validBytes: offset, torn: true };
    throw new WalCorruptError(fileName, offset, problem.detail);
  }
  return { records, validBytes: offset, torn: false };
}

interface RecordProblem {
  detail: string;
  /** Could this be the remains of an append cut by a crash (nothing valid after it)? */
  torn: boolean;
}

function checkRecordAt(data: Buffer, offset: number): RecordProblem | null {
  const available = data.length - offset;
  if (available < RECORD_HEADER_BYTES) return { detail: `incomplete record header (${available} bytes)`, torn: true };
  const headerCheck = crc32c(data, 0, offset, offset + 6) & 0xffff;
  if (headerCheck !== data.readUInt16LE(offset + 6) || data[offset + 5] !== 0) {
    // A header straddling a sector boundary can be half written; otherwise this is damage.
    return { detail: "record header checksum mismatch", torn: zeroFromBoundaryInside(data, offset) };
  }
  const type = data[offset + 4]!;
  const length = data.readUInt32LE(offset);
  if (type === 0 || type > MAX_RECORD_TYPE) return { detail: `unknown record type ${type}`, torn: false };
  if (length > MAX_RECORD_PAYLOAD_BYTES) return { detail: `record length ${length} over the limit`, torn: false };
  const end = offset + RECORD_OVERHEAD_BYTES + length;
  if (end > data.length) {
    return { detail: `record of ${length} bytes runs past the end of the file (${available} bytes left)`, torn: true };
  }
  const typeCrc = crc32c(data, 0, offset + 4, offset + 5);
  const crc = crc32c(data, typeCrc, offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
  if (crc !== data.readUInt32LE(end - RECORD_TRAILER_BYTES)) {
    // Torn only if it is the last record and part of it is whole zero sectors (a write that did not land);
    // a flipped bit in synced data leaves no zero sector and must stop start-up.
    const last = end === data.length || isZero(data, end, data.length);
    return { detail: "record checksum mismatch", torn: last && tornSectors(data, offset, end) };
  }
  return null;
}

/** Is there a sector boundary inside the header at `offset` from which the file is zeros to its end? */
function zeroFromBoundaryInside(data: Buffer, offset: number): boolean {
  const boundary = Math.ceil((offset + 1) / SECTOR_BYTES) * SECTOR_BYTES;
  return boundary < offset + RECORD_HEADER_BYTES && isZero(data, boundary, data.length);
}

/** Does [start, end) contain a sector-aligned run of zeros, or zeros up to `end` at the file's end? */
function tornSectors(data: Buffer, start: number, end: number): boolean {
  let sector = Math.ceil(start / SECTOR_BYTES) * SECTOR_BYTES;
  for (; sector < end; sector += SECTOR_BYTES) {
    if (isZero(data, sector, Math.min(sector + SECTOR_BYTES, end))) return true;
  }
  return false;
}

function isZero(data: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (data[i] !== 0) return false;
  return true;
}
