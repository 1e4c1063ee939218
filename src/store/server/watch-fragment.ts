// etcd's watch fragmentation (WatchCreateRequest.fragment, etcd 3.4): a watch response whose protobuf encoding is
// at least a limit (etcd: max-request-bytes + 512 KiB, 2 MiB by default) and that holds two events or more is
// sent as several responses, each with
// as many events as fit under the limit (at least one), all but the last marked `fragment: true`; a client joins
// them back. Sizes are those of the protobuf encoding etcd measures (etcdserverpb.WatchResponse), computed here
// field by field, so the split points match etcd's (up to the few bytes by which two servers' header ids differ).
import assert from "node:assert";
import type { KeyValue } from "../mvcc/commands.js";
import type { WatchEvent, WatchResponse } from "../mvcc/watch-types.js";
import type { ReplicaHeader } from "../replica.js";

/** Bytes of a varint holding `value` (an int64 below zero takes 10, like Go's encoding of a negative int64). */
function varintBytes(value: number): number {
  if (value < 0) return 10;
  let bytes = 1;
  let rest = Math.floor(value / 128);
  while (rest > 0) {
    bytes++;
    rest = Math.floor(rest / 128);
  }
  return bytes;
}

/** A varint field (field numbers below 16 take a one-byte tag); 0 is omitted (proto3). */
function intField(value: number): number {
  return value === 0 ? 0 : 1 + varintBytes(value);
}

/** A length-delimited field of `length` bytes; omitted when empty unless `always` (an embedded message). */
function bytesField(length: number, always = false): number {
  return length === 0 && !always ? 0 : 1 + varintBytes(length) + length;
}

function keyValueBytes(kv: KeyValue): number {
  return (
    bytesField(kv.key.length) +
    intField(kv.create_revision) +
    intField(kv.mod_revision) +
    intField(kv.version) +
    bytesField(kv.value.length) +
    intField(kv.lease)
  );
}

/** One event as the gateway sends it: a DELETE's kv holds only the key and the revision of the delete. */
export function eventBytes(event: WatchEvent): number {
  const kv =
    event.type === "DELETE"
      ? bytesField(event.kv.key.length) + intField(event.kv.mod_revision)
      : keyValueBytes(event.kv);
  let size = intField(event.type === "DELETE" ? 1 : 0) + bytesField(kv, true);
  if (event.prev_kv !== undefined) size += bytesField(keyValueBytes(event.prev_kv), true);
  return size;
}

/** The encoded size of a response without its events (header, id, flags), with `fragment` set or not. */
function envelopeBytes(response: WatchResponse, ids: ReplicaHeader, watchId: number, fragment: boolean): number {
  const header =
    intField(ids.cluster_id) + intField(ids.member_id) + intField(response.header.revision) + intField(ids.raft_term);
  return (
    bytesField(header, true) +
    intField(watchId) +
    (response.created ? 2 : 0) +
    (response.canceled ? 2 : 0) +
    intField(response.compact_revision) +
    bytesField(Buffer.byteLength(response.cancel_reason)) +
    (fragment ? 2 : 0)
  );
}

/** Events are a repeated field (number 11): each one a tag, a length and the event. */
function eventFieldBytes(event: WatchEvent): number {
  return bytesField(eventBytes(event), true);
}

/**
 * Splits `response` the way etcd does for a watcher created with `fragment: true`: unchanged when it is smaller
 * than `maxBytes` or has fewer than two events; else pieces of one or more events, each below `maxBytes` unless a
 * single event is larger, every piece but the last flagged as a fragment.
 */
export function fragmentWatchResponse(
  response: WatchResponse,
  ids: ReplicaHeader,
  watchId: number,
  maxBytes: number,
): Array<{ response: WatchResponse; fragment: boolean }> {
  const events = response.events;
  const sizes = events.map(eventFieldBytes);
  const whole = envelopeBytes(response, ids, watchId, false) + sizes.reduce((sum, size) => sum + size, 0);
  if (whole < maxBytes || events.length < 2) return [{ response, fragment: false }];
  const envelope = envelopeBytes(response, ids, watchId, true);
  const pieces: Array<{ response: WatchResponse; fragment: boolean }> = [];
  let first = 0;
  while (first < events.length) {
    let size = envelope + sizes[first]!;
    let end = first + 1;
    // etcd adds events while the piece stays below the limit; the event that reaches it starts the next piece.
    while (end < events.length && size + sizes[end]! < maxBytes) {
      size += sizes[end]!;
      end++;
    }
    pieces.push({ response: { ...response, events: events.slice(first, end) }, fragment: end < events.length });
    first = end;
  }
  assert(pieces.length >= 2, "a response at or above the limit with two events splits in two or more");
  return pieces;
}
