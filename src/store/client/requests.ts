// Request bodies and answers of the KV, txn and cluster calls, between the client's types and the gateway's JSON.
import type {
  Compare,
  DeleteOptions,
  DeleteResult,
  Member,
  PutOptions,
  PutResult,
  RangeOptions,
  RangeResult,
  TxnOp,
  TxnOpResult,
} from "../client.js";
import {
  type Bytes,
  decodeHeader,
  decodeId,
  decodeInt,
  decodeKeyValues,
  encodeBytes,
  encodeRange,
  type WireObject,
} from "./wire.js";

export function encodeRangeRequest(key: Bytes, options: RangeOptions): WireObject {
  const body: WireObject = {};
  encodeRange(body, key, options);
  if (options.revision !== undefined && options.revision > 0) body.revision = String(options.revision);
  if (options.limit !== undefined && options.limit > 0) body.limit = String(options.limit);
  if (options.serializable === true) body.serializable = true;
  if (options.keysOnly === true) body.keys_only = true;
  if (options.countOnly === true) body.count_only = true;
  if (options.sortOrder !== undefined) body.sort_order = options.sortOrder;
  if (options.sortTarget !== undefined) body.sort_target = options.sortTarget;
  if (options.maxCreateRevision !== undefined && options.maxCreateRevision > 0) {
    body.max_create_revision = String(options.maxCreateRevision);
  }
  return body;
}

export function encodePutRequest(key: Bytes, value: Bytes, options: PutOptions): WireObject {
  const body: WireObject = { key: encodeBytes(key), value: encodeBytes(value) };
  if (options.lease !== undefined && String(options.lease) !== "0") body.lease = String(options.lease);
  if (options.prevKv === true) body.prev_kv = true;
  if (options.ignoreValue === true) body.ignore_value = true;
  if (options.ignoreLease === true) body.ignore_lease = true;
  return body;
}

export function encodeDeleteRequest(key: Bytes, options: DeleteOptions): WireObject {
  const body: WireObject = {};
  encodeRange(body, key, options);
  if (options.prevKv === true) body.prev_kv = true;
  return body;
}

export function encodeCompare(compare: Compare): WireObject {
  const body: WireObject = { result: compare.result, target: compare.target };
  encodeRange(body, compare.key, { rangeEnd: compare.rangeEnd });
  if (compare.target === "VERSION") body.version = String(compare.version);
  else if (compare.target === "CREATE") body.create_revision = String(compare.createRevision);
  else if (compare.target === "MOD") body.mod_revision = String(compare.modRevision);
  else if (compare.target === "VALUE") body.value = encodeBytes(compare.value);
  else body.lease = String(compare.lease);
  return body;
}

export function encodeOp(op: TxnOp): WireObject {
  if ("range" in op) return { request_range: encodeRangeRequest(op.range, op) };
  if ("put" in op) return { request_put: encodePutRequest(op.put, op.value, op) };
  return { request_delete_range: encodeDeleteRequest(op.deleteRange, op) };
}

export function decodeRange(answer: WireObject): RangeResult {
  return {
    header: decodeHeader(answer.header),
    kvs: decodeKeyValues(answer.kvs),
    more: answer.more === true,
    count: decodeInt(answer.count),
  };
}

export function decodePut(answer: WireObject): PutResult {
  const prev = decodeKeyValues(answer.prev_kv === undefined ? undefined : [answer.prev_kv]);
  return { header: decodeHeader(answer.header), prevKv: prev[0] };
}

export function decodeDelete(answer: WireObject): DeleteResult {
  return {
    header: decodeHeader(answer.header),
    deleted: decodeInt(answer.deleted),
    prevKvs: decodeKeyValues(answer.prev_kvs),
  };
}

export function decodeOpResult(response: WireObject): TxnOpResult {
  if (response.response_range !== undefined) {
    return { kind: "range", result: decodeRange(response.response_range as WireObject) };
  }
  if (response.response_put !== undefined)
    return { kind: "put", result: decodePut(response.response_put as WireObject) };
  return { kind: "delete", result: decodeDelete((response.response_delete_range ?? {}) as WireObject) };
}

export function decodeMembers(value: unknown): Member[] {
  if (!Array.isArray(value)) return [];
  return (value as WireObject[]).map((member) => ({
    id: decodeId(member.ID),
    name: String(member.name ?? ""),
    peerUrls: Array.isArray(member.peerURLs) ? member.peerURLs.map(String) : [],
    clientUrls: Array.isArray(member.clientURLs) ? member.clientURLs.map(String) : [],
    isLearner: member.isLearner === true,
  }));
}
