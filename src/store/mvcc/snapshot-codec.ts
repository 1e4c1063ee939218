// The key-space snapshot format: every key's kept history, the order of the event log, the lease table and the
// applied index, then a CRC-32C of everything before it. The event log is stored as a list of key ordinals
// (each log event is the next not-yet-used revision >= the compact revision of that key), so nothing is stored
// twice. Lease -> key attachments are not stored: they follow from each live key's lease.
import { crc32c } from "../wal/crc32c.js";
import { ByteReader, ByteWriter } from "./bytes.js";
import { SnapshotDecodeError } from "./errors.js";
import type { KeyHistory, KeyRevision } from "./key-space.js";

const MAGIC = 0x564b5631; // "VKV1"

export interface KeySpaceSnapshot {
  appliedIndex: number;
  currentRevision: number;
  compactRevision: number;
  lastGeneratedLeaseId: number;
  leases: { id: number; ttlSeconds: number }[];
  histories: KeyHistory[];
  events: KeyRevision[];
}

export function encodeSnapshot(state: KeySpaceSnapshot): Uint8Array {
  const w = new ByteWriter(1 << 16);
  w.uint(MAGIC).uint(state.appliedIndex).uint(state.currentRevision).uint(state.compactRevision);
  w.uint(state.lastGeneratedLeaseId).uint(state.leases.length);
  for (const lease of state.leases) w.uint(lease.id).uint(lease.ttlSeconds);
  const ordinals = new Map<string, number>();
  w.uint(state.histories.length);
  for (let k = 0; k < state.histories.length; k++) {
    const history = state.histories[k]!;
    ordinals.set(history.key, k);
    w.latin1(history.key).uint(history.revisions.length);
    for (const r of history.revisions) {
      w.uint(r.mod);
      if (r.value === null) {
        w.byte(0);
      } else {
        w.byte(1).uint(r.create).uint(r.version).uint(r.lease).latin1(r.value);
      }
    }
  }
  w.uint(state.events.length);
  for (const event of state.events) {
    const ordinal = ordinals.get(event.key);
    if (ordinal === undefined) throw new Error(`event for unindexed key at revision ${event.mod}`);
    w.uint(ordinal);
  }
  const body = w.finish();
  const out = new Uint8Array(body.length + 4);
  out.set(body);
  new DataView(out.buffer).setUint32(body.length, crc32c(body));
  return out;
}

export function decodeSnapshot(data: Uint8Array): KeySpaceSnapshot {
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
