// Conversions between the etcd v3 JSON gateway's wire form and the client's types.
// On the wire keys and values are base64 and int64 values are decimal strings; proto3 JSON omits fields at their
// default (0, false, "", []), so every decoder here treats a missing field as that default.
import { VigieError } from "../../errors.js";

/** Keys and values are accepted as text (UTF-8) or bytes. */
export type Bytes = string | Uint8Array;

export interface ResponseHeader {
  clusterId: string;
  memberId: string;
  revision: number;
  raftTerm: number;
}

export interface KeyValue {
  /** Buffer is a Uint8Array; `.toString()` gives the UTF-8 text. */
  key: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  /** Lease ID as a decimal string (lease IDs exceed 2^53), "0" when none. */
  lease: string;
}

export type WireObject = Record<string, unknown>;

/** An error answered by the store: `{"error","message","code"}` with the gRPC status code. */
export class EtcdError extends VigieError {
  readonly grpcCode: number;
  readonly httpStatus: number;
  constructor(grpcCode: number, message: string, httpStatus: number) {
    super("VIGIE_ERR_ETCD", message);
    this.grpcCode = grpcCode;
    this.httpStatus = httpStatus;
  }
  /** The requested revision is older than the last compaction: the caller must resync from the present. */
  get compacted(): boolean {
    return this.grpcCode === GRPC_OUT_OF_RANGE && this.message.includes("compacted");
  }
}

export const GRPC_INVALID_ARGUMENT = 3;
export const GRPC_NOT_FOUND = 5;
export const GRPC_OUT_OF_RANGE = 11;
export const GRPC_UNAVAILABLE = 14;

export function toBytes(value: Bytes): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function encodeBytes(value: Bytes): string {
  return toBytes(value).toString("base64");
}

/** The range end that selects every key starting with `prefix` (etcd's "prefix + 1" rule). */
export function prefixEnd(prefix: Bytes): Buffer {
  const bytes = Buffer.from(toBytes(prefix));
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = bytes.subarray(0, i + 1);
      end[i]! += 1;
      return end;
    }
  }
  // All 0xff (or empty): every key from `prefix` to the end of the keyspace, spelled as "\0".
  return Buffer.from([0]);
}

export function decodeBytes(value: unknown): Buffer {
  if (value === undefined || value === null) return Buffer.alloc(0);
  if (typeof value !== "string") throw new TypeError(`expected base64 text, got ${typeof value}`);
  return Buffer.from(value, "base64");
}

/** int64 as a JS number. Revisions, versions and counts stay far below 2^53 in any real store. */
export function decodeInt(value: unknown): number {
  if (value === undefined || value === null) return 0;
  const number = typeof value === "number" ? value : Number(value);
  if (!Number.isSafeInteger(number)) throw new TypeError(`expected an int64, got ${JSON.stringify(value)}`);
  return number;
}

/** IDs (lease, member, cluster) can exceed 2^53, so they stay decimal strings. */
export function decodeId(value: unknown): string {
  if (value === undefined || value === null) return "0";
  if (typeof value === "number") return String(value);
  if (typeof value !== "string" || !/^-?\d+$/.test(value)) throw new TypeError(`expected an ID, got ${value}`);
  return value;
}

export function decodeHeader(value: unknown): ResponseHeader {
  const header = (value ?? {}) as WireObject;
  return {
    clusterId: decodeId(header.cluster_id),
    memberId: decodeId(header.member_id),
    revision: decodeInt(header.revision),
    raftTerm: decodeInt(header.raft_term),
  };
}

export function decodeKeyValue(value: unknown): KeyValue {
  const kv = value as WireObject;
  return {
    key: decodeBytes(kv.key),
    value: decodeBytes(kv.value),
    createRevision: decodeInt(kv.create_revision),
    modRevision: decodeInt(kv.mod_revision),
    version: decodeInt(kv.version),
    lease: decodeId(kv.lease),
  };
}

export function decodeKeyValues(value: unknown): KeyValue[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TypeError("expected a list of key-values");
  return value.map(decodeKeyValue);
}

/** Appends `key`/`range_end` for a key, a prefix, or an explicit range. */
export function encodeRange(
  target: WireObject,
  key: Bytes,
  options: { prefix?: boolean | undefined; rangeEnd?: Bytes | undefined },
): void {
  target.key = encodeBytes(key);
  if (options.prefix === true) {
    // An empty prefix means "every key": etcd spells that key "\0" with range_end "\0".
    if (toBytes(key).length === 0) target.key = encodeBytes(Buffer.from([0]));
    target.range_end = encodeBytes(prefixEnd(key));
  } else if (options.rangeEnd !== undefined) {
    target.range_end = encodeBytes(options.rangeEnd);
  }
}
