// Conversions between the key space's internal records (latin1 keys and values) and etcd-shaped KeyValues.
import type { KeyValue } from "./commands.js";
import type { KeyRevision } from "./key-space.js";

const EMPTY = Buffer.alloc(0);

/** The bytes of a binary (latin1) key. */
export function keyBytes(key: string): Buffer {
  return Buffer.from(key, "latin1");
}

/**
 * The KeyValue of a live revision (fresh Buffers: callers may keep or change them).
 */
export function keyValueOf(record: KeyRevision, keysOnly: boolean): KeyValue {
  return {
    key: keyBytes(record.key),
    create_revision: record.create,
    mod_revision: record.mod,
    version: record.version,
    value: keysOnly || record.value === null || record.value.length === 0 ? EMPTY : keyBytes(record.value),
    lease: record.lease,
  };
}

/** A delete event's kv: only key and mod_revision, like etcd. */
export function tombstoneKeyValue(record: KeyRevision): KeyValue {
  return {
    key: keyBytes(record.key),
    create_revision: 0,
    mod_revision: record.mod,
    version: 0,
    value: EMPTY,
    lease: 0,
  };
}
