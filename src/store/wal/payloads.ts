// Payloads of the WAL's record types. Fixed-width little-endian integers (53-bit safe integers as two u32s):
// decoding is a few DataView reads, and every payload is checked for its exact length.
import type { ConfState, Entry, EntryType, HardState, SnapshotMetadata } from "../raft/types.js";
import { WalCorruptError } from "./errors.js";

export const SEGMENT_MAGIC = 0x4c415756; // "VWAL" little-endian
export const SEGMENT_FORMAT_VERSION = 1;

const ENTRY_TYPES: readonly EntryType[] = ["normal", "confChange"];
const TWO_POW_32 = 2 ** 32;

function writeU53(buffer: Buffer, value: number, offset: number): void {
  buffer.writeUInt32LE(value % TWO_POW_32, offset);
  buffer.writeUInt32LE(Math.floor(value / TWO_POW_32), offset + 4);
}

function readU53(buffer: Buffer, offset: number): number {
  return buffer.readUInt32LE(offset) + buffer.readUInt32LE(offset + 4) * TWO_POW_32;
}

/** Where a payload sits, for error messages. */
export interface PayloadPlace {
  file: string;
  offset: number;
}

function expectLength(payload: Buffer, bytes: number, what: string, place: PayloadPlace, atLeast = false): void {
  if (atLeast ? payload.length < bytes : payload.length !== bytes) {
    throw new WalCorruptError(place.file, place.offset, `${what} record has ${payload.length} bytes`);
  }
}

/** Term, index and type before an entry's data. */
const ENTRY_HEADER_BYTES = 17;

export function entryPayloadBytes(entry: Entry): number {
  return ENTRY_HEADER_BYTES + entry.data.length;
}

/** Writes an entry's payload (entryPayloadBytes long) into `out` at `offset`. */
export function writeEntry(entry: Entry, out: Buffer, offset: number): void {
  writeU53(out, entry.term, offset);
  writeU53(out, entry.index, offset + 8);
  out[offset + 16] = ENTRY_TYPES.indexOf(entry.type);
  out.set(entry.data, offset + ENTRY_HEADER_BYTES);
}

export function decodeEntry(payload: Buffer, place: PayloadPlace): Entry {
  expectLength(payload, ENTRY_HEADER_BYTES, "entry", place, true);
  const type = ENTRY_TYPES[payload[16]!];
  if (type === undefined) throw new WalCorruptError(place.file, place.offset, `unknown entry type ${payload[16]}`);
  // Copy: the segment buffer is large and should not be kept alive by one entry.
  return {
    term: readU53(payload, 0),
    index: readU53(payload, 8),
    type,
    data: Uint8Array.prototype.slice.call(payload, 17),
  };
}

export function encodeHardState(state: HardState): Buffer {
  const out = Buffer.allocUnsafe(24);
  writeU53(out, state.term, 0);
  writeU53(out, state.vote, 8);
  writeU53(out, state.commit, 16);
  return out;
}

export function decodeHardState(payload: Buffer, place: PayloadPlace): HardState {
  expectLength(payload, 24, "hard state", place);
  return { term: readU53(payload, 0), vote: readU53(payload, 8), commit: readU53(payload, 16) };
}

export function encodeSnapshotMetadata(meta: SnapshotMetadata): Buffer {
  const { voters, learners } = meta.confState;
  const out = Buffer.allocUnsafe(24 + 8 * (voters.length + learners.length));
  writeU53(out, meta.index, 0);
  writeU53(out, meta.term, 8);
  out.writeUInt32LE(voters.length, 16);
  out.writeUInt32LE(learners.length, 20);
  let at = 24;
  for (const id of [...voters, ...learners]) {
    writeU53(out, id, at);
    at += 8;
  }
  return out;
}

export function decodeSnapshotMetadata(payload: Buffer, place: PayloadPlace): SnapshotMetadata {
  expectLength(payload, 24, "snapshot", place, true);
  const voterCount = payload.readUInt32LE(16);
  const learnerCount = payload.readUInt32LE(20);
  expectLength(payload, 24 + 8 * (voterCount + learnerCount), "snapshot", place);
  const ids: number[] = [];
  for (let at = 24; at < payload.length; at += 8) ids.push(readU53(payload, at));
  const confState: ConfState = { voters: ids.slice(0, voterCount), learners: ids.slice(voterCount) };
  return { index: readU53(payload, 0), term: readU53(payload, 8), confState };
}

export interface SegmentHeader {
  seq: number;
  /** Index the first entry of this segment was expected to have (last index + 1 when it was created). */
  firstIndex: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const out = Buffer.allocUnsafe(24);
  out.writeUInt32LE(SEGMENT_MAGIC, 0);
  out.writeUInt32LE(SEGMENT_FORMAT_VERSION, 4);
  writeU53(out, header.seq, 8);
  writeU53(out, header.firstIndex, 16);
  return out;
}

export function decodeSegmentHeader(payload: Buffer, place: PayloadPlace): SegmentHeader {
  expectLength(payload, 24, "segment header", place);
  if (payload.readUInt32LE(0) !== SEGMENT_MAGIC) throw new WalCorruptError(place.file, place.offset, "bad magic");
  const version = payload.readUInt32LE(4);
  if (version !== SEGMENT_FORMAT_VERSION) {
    throw new WalCorruptError(place.file, place.offset, `unsupported segment format ${version}`);
  }
  return { seq: readU53(payload, 8), firstIndex: readU53(payload, 16) };
}

export function encodeSeal(nextSeq: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  writeU53(out, nextSeq, 0);
  return out;
}

export function decodeSeal(payload: Buffer, place: PayloadPlace): number {
  expectLength(payload, 8, "seal", place);
  return readU53(payload, 0);
}
