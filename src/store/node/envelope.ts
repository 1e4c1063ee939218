// What the driver puts in a normal Raft entry's data: a 17-byte header naming the proposing member and its request
// number, then the payload. The proposer finds its own requests when it applies the entry (the core may forward a
// proposal to the leader, so the entry's index is not known at proposal time).
import assert from "node:assert/strict";

export const ENTRY_KV = 1;
export const ENTRY_MEMBER_ATTRIBUTES = 2;
export type EntryKind = typeof ENTRY_KV | typeof ENTRY_MEMBER_ATTRIBUTES;

const HEADER_BYTES = 17;

export interface EntryEnvelope {
  kind: EntryKind;
  /** The member that proposed it (0 for requests nobody waits for). */
  origin: number;
  /** The origin's request number. */
  requestId: number;
  payload: Uint8Array;
}

export function encodeEnvelope(kind: EntryKind, origin: number, requestId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  const view = new DataView(out.buffer);
  out[0] = kind;
  // Safe integers are exact in a float64: no BigInt on the hot path.
  view.setFloat64(1, origin);
  view.setFloat64(9, requestId);
  out.set(payload, HEADER_BYTES);
  return out;
}

export function decodeEnvelope(data: Uint8Array): EntryEnvelope {
  assert.ok(data.length >= HEADER_BYTES, `entry data of ${data.length} bytes has no envelope`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const kind = data[0];
  assert.ok(kind === ENTRY_KV || kind === ENTRY_MEMBER_ATTRIBUTES, `unknown entry kind ${String(kind)}`);
  return {
    kind,
    origin: view.getFloat64(1),
    requestId: view.getFloat64(9),
    payload: data.subarray(HEADER_BYTES),
  };
}
