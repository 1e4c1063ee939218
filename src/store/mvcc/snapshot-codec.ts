// The key-space snapshot format: every key's kept history, the order of the event log, the lease table and the
// applied index, then a CRC-32C of everything before it. The event log is stored as a list of key ordinals
// (each log event is the next not-yet-used revision >= the compact revision of that key), so nothing is stored
// twice. Lease -> key attachments are not stored: they follow from each live key's lease.
import assert from "node:assert/strict";
import { crc32c } from "../wal/crc32c.js";
import { ByteReader, putUint, uintSize } from "./bytes.js";
import { SnapshotDecodeError } from "./errors.js";
import type { KeptRevisions, KeyHistory, KeyRevision } from "./key-space.js";

const MAGIC = 0x564b5631; // "VKV1"

export interface KeySpaceSnapshot {
  appliedIndex: number;
  currentRevision: number;
  compactRevision: number;
  lastGeneratedLeaseId: number;
  leases: { id: number; ttlSeconds: number }[];
  histories: readonly KeptRevisions[];
  events: readonly KeyRevision[];
}

/** What decodeSnapshot returns: every key's revisions as a list, as KeySpace.load takes them. */
export interface DecodedKeySpace extends KeySpaceSnapshot {
  histories: KeyHistory[];
  events: KeyRevision[];
}

/**
 * Encodes `state` into one buffer of exactly the size it needs, measured in a first pass, after `headroom` bytes
 * that the caller fills (the Raft snapshot's own header, see snapshot-data.ts): the bytes are written once and not
 * copied again. With 100,000 keys (15 MB) this runs on the event loop, which nothing else uses meanwhile: a writer
 * that grew by doubling, wrote strings a character at a time and was copied twice more (its final slice, then
 * behind the header) took 460-660 ms there, and ~1.2 s on each of three members snapshotting at once on 2 cores,
 * during which the cluster took no write. This takes 90-195 ms alone (mostly ~160); about a third of that is the
 * kernel's page faults on the fresh buffer.
 */
export function encodeSnapshot(state: KeySpaceSnapshot, headroom = 0): Uint8Array {
  let size = uintSize(MAGIC) + uintSize(state.appliedIndex) + uintSize(state.currentRevision);
  size += uintSize(state.compactRevision) + uintSize(state.lastGeneratedLeaseId) + uintSize(state.leases.length);
  for (const lease of state.leases) size += uintSize(lease.id) + uintSize(lease.ttlSeconds);
  size += uintSize(state.histories.length);
  for (const kept of state.histories) {
    size += uintSize(kept.key.length) + kept.key.length;
    if ("revisions" in kept) {
      size += uintSize(kept.revisions.length);
      for (const r of kept.revisions) size += revisionSize(r);
    } else {
      size += uintSize(1) + revisionSize(kept);
    }
  }
  const eventOrdinals = placeEvents(state) ?? eventOrdinalsByKey(state);
  size += uintSize(eventOrdinals.length);
  for (const ordinal of eventOrdinals) size += uintSize(ordinal);
  const out = Buffer.allocUnsafeSlow(headroom + size + 4);
  const w = new SizedWriter(out, headroom);
  w.uint(MAGIC).uint(state.appliedIndex).uint(state.currentRevision).uint(state.compactRevision);
  w.uint(state.lastGeneratedLeaseId).uint(state.leases.length);
  for (const lease of state.leases) w.uint(lease.id).uint(lease.ttlSeconds);
  w.uint(state.histories.length);
  for (const kept of state.histories) {
    w.latin1(kept.key);
    if ("revisions" in kept) {
      w.uint(kept.revisions.length);
      for (const r of kept.revisions) w.revision(r);
    } else {
      w.uint(1).revision(kept);
    }
  }
  w.uint(eventOrdinals.length);
  for (const ordinal of eventOrdinals) w.uint(ordinal);
  assert.equal(w.offset, headroom + size, "snapshot size measured and written differ");
  out.writeUInt32BE(crc32c(out, 0, headroom, headroom + size), headroom + size);
  return out;
}

/** Marks an event not placed yet (no key space has 2^32 - 1 keys). */
const UNPLACED = 0xffffffff;
/** Events of one revision that placeEvents scans for a record before it gives up (see there). */
const MAX_GROUP_SCAN = 256;

/**
 * For each event of the log, the ordinal of its key's history, found without a lookup by key: the log holds the
 * very revision records of the histories, every one from the compact revision on, in revision order, so each such
 * record is found by its revision (a binary search), then among that revision's events (a txn's) by identity. A
 * Map from key to ordinal, as before, made ~13 MB of garbage with 125,000 keys, which brought on a full collection
 * after each snapshot. Null when the log and the histories disagree: eventOrdinalsByKey then decides.
 */
function placeEvents(state: KeySpaceSnapshot): Uint32Array | null {
  const { events, histories, compactRevision } = state;
  const ordinals = new Uint32Array(events.length).fill(UNPLACED);
  const place = (r: KeyRevision, ordinal: number): boolean => {
    if (r.mod < compactRevision) return true;
    let lo = 0;
    let hi = events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (events[mid]!.mod < r.mod) lo = mid + 1;
      else hi = mid;
    }
    // A revision's events are few (a put, a txn's ops), except for a delete of a whole range: scanning a group of
    // thousands once per member would be quadratic, so a large group sends the log to eventOrdinalsByKey.
    const groupStart = lo;
    while (lo < events.length && events[lo]!.mod === r.mod && events[lo] !== r) {
      if (++lo - groupStart > MAX_GROUP_SCAN) return false;
    }
    if (events[lo] !== r) return false;
    ordinals[lo] = ordinal;
    return true;
  };
  for (let k = 0; k < histories.length; k++) {
    const kept = histories[k]!;
    if ("revisions" in kept) {
      for (const r of kept.revisions) if (!place(r, k)) return null;
    } else if (!place(kept, k)) {
      return null;
    }
  }
  return ordinals.includes(UNPLACED) ? null : ordinals;
}

/** The ordinals by a key -> ordinal map (the first way, kept for a log that placeEvents cannot place). */
function eventOrdinalsByKey(state: KeySpaceSnapshot): Uint32Array {
  const byKey = new Map<string, number>();
  for (let k = 0; k < state.histories.length; k++) byKey.set(state.histories[k]!.key, k);
  const ordinals = new Uint32Array(state.events.length);
  for (let i = 0; i < state.events.length; i++) {
    const event = state.events[i]!;
    const ordinal = byKey.get(event.key);
    if (ordinal === undefined) throw new Error(`event for unindexed key at revision ${event.mod}`);
    ordinals[i] = ordinal;
  }
  return ordinals;
}

/** Bytes of one revision as SizedWriter.revision writes it. */
function revisionSize(r: KeyRevision): number {
  if (r.value === null) return uintSize(r.mod) + 1;
  return uintSize(r.mod) + 1 + uintSize(r.create) + uintSize(r.version) + uintSize(r.lease) + latin1Size(r.value);
}

function latin1Size(value: string): number {
  return uintSize(value.length) + value.length;
}

/**
 * Writes into a buffer already sized for what is written (encodeSnapshot measured it), in ByteWriter's format:
 * no growth checks, and strings copied by Buffer's native latin1 write instead of one character at a time.
 */
class SizedWriter {
  constructor(
    private readonly buffer: Buffer,
    public offset: number,
  ) {}

  byte(value: number): this {
    this.buffer[this.offset++] = value;
    return this;
  }

  uint(value: number): this {
    this.offset = putUint(this.buffer, this.offset, value);
    return this;
  }

  /**
   * Short strings (most keys) a character at a time, longer ones (values) by Buffer's native write: its call costs
   * more than a loop over a key of a dozen characters, and far less than one over a 100-byte value.
   */
  latin1(value: string): this {
    this.uint(value.length);
    if (value.length < NATIVE_WRITE_MIN_CHARS) {
      for (let i = 0; i < value.length; i++) this.buffer[this.offset++] = value.charCodeAt(i);
    } else {
      this.offset += this.buffer.write(value, this.offset, value.length, "latin1");
    }
    return this;
  }

  /** A revision: its mod, then 0 for a tombstone, or 1, create, version, lease and the value. */
  revision(r: KeyRevision): this {
    this.uint(r.mod);
    if (r.value === null) return this.byte(0);
    return this.byte(1).uint(r.create).uint(r.version).uint(r.lease).latin1(r.value);
  }
}

/** See SizedWriter.latin1. */
const NATIVE_WRITE_MIN_CHARS = 32;

export function decodeSnapshot(data: Uint8Array): DecodedKeySpace {
  if (data.length < 4) throw new SnapshotDecodeError(`only ${data.length} bytes`);
  const body = data.subarray(0, data.length - 4);
  const stored = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(data.length - 4);
  const actual = crc32c(body);
  if (stored !== actual) {
    throw new SnapshotDecodeError(`checksum mismatch (stored ${hex(stored)}, computed ${hex(actual)})`);
  }
  const r = new ByteReader(body, (detail) => new SnapshotDecodeError(detail));
  if (r.uint() !== MAGIC) throw new SnapshotDecodeError("not a vigie key-space snapshot (bad magic)");
  const appliedIndex = r.uint();
  const currentRevision = r.uint();
  const compactRevision = r.uint();
  const lastGeneratedLeaseId = r.uint();
  const leases: { id: number; ttlSeconds: number }[] = [];
  for (let n = r.uint(); n > 0; n--) leases.push({ id: r.uint(), ttlSeconds: r.uint() });
  const histories: KeyHistory[] = [];
  const cursors: number[] = [];
  const historyCount = r.uint();
  for (let k = 0; k < historyCount; k++) {
    const key = r.latin1();
    const revisions: KeyRevision[] = [];
    for (let n = r.uint(); n > 0; n--) {
      const mod = r.uint();
      const live = r.byte();
      if (live === 0) revisions.push({ key, mod, create: 0, version: 0, lease: 0, value: null });
      else revisions.push({ key, mod, create: r.uint(), version: r.uint(), lease: r.uint(), value: r.latin1() });
    }
    if (k > 0 && histories[k - 1]!.key >= key) throw new SnapshotDecodeError(`keys out of order at key #${k}`);
    histories.push({ key, revisions });
    let cursor = 0;
    while (cursor < revisions.length && revisions[cursor]!.mod < compactRevision) cursor++;
    cursors.push(cursor);
  }
  const events: KeyRevision[] = [];
  for (let n = r.uint(); n > 0; n--) {
    const ordinal = r.uint();
    const history = histories[ordinal];
    const record = history?.revisions[cursors[ordinal]!];
    if (record === undefined) throw new SnapshotDecodeError(`event log refers to missing revision of key #${ordinal}`);
    cursors[ordinal]!++;
    events.push(record);
  }
  r.expectEnd();
  return {
    appliedIndex,
    currentRevision,
    compactRevision,
    lastGeneratedLeaseId,
    leases,
    histories,
    events,
  };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}
