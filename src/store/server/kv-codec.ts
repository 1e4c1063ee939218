// JSON <-> MVCC shapes for the KV service (`/v3/kv/*`) and watch events, field for field like etcd 3.4's gateway.
import type {
  CompactionRequest,
  Compare,
  CompareResult,
  CompareTarget,
  DeleteRangeRequest,
  DeleteRangeResponse,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseOp,
  SortOrder,
  SortTarget,
  TxnRequest,
  TxnResponse,
} from "../mvcc/commands.js";
import { MAX_TXN_OPS } from "../mvcc/commands.js";
import type { WatchCreateRequest, WatchEvent, WatchFilter } from "../mvcc/watch-types.js";
import type { ReplicaHeader } from "../replica.js";
import { GatewayError, Grpc } from "./errors.js";
import { type JsonObject, ProtoReader, putBool, putBytes, putEnum, putInt, putList } from "./proto-json.js";

const SORT_ORDERS: readonly SortOrder[] = ["NONE", "ASCEND", "DESCEND"];
const SORT_TARGETS: readonly SortTarget[] = ["KEY", "VERSION", "CREATE", "MOD", "VALUE"];
const COMPARE_RESULTS: readonly CompareResult[] = ["EQUAL", "GREATER", "LESS", "NOT_EQUAL"];
const COMPARE_TARGETS: readonly CompareTarget[] = ["VERSION", "CREATE", "MOD", "VALUE", "LEASE"];
const WATCH_FILTERS: readonly WatchFilter[] = ["NOPUT", "NODELETE"];

function keyRequired(key: Uint8Array): void {
  // etcd checks this before anything else reaches the store.
  if (key.length === 0) throw new GatewayError(Grpc.InvalidArgument, "etcdserver: key is not provided");
}

export function decodeRangeRequest(reader: ProtoReader): RangeRequest {
  const request = readRangeRequest(reader);
  checkRangeRequest(request);
  return request;
}

function readRangeRequest(reader: ProtoReader): RangeRequest {
  return {
    key: reader.bytes("key"),
    range_end: reader.bytes("range_end"),
    limit: reader.int64("limit"),
    revision: reader.int64("revision"),
    sort_order: reader.enumValue("sort_order", SORT_ORDERS, "etcdserverpb.RangeRequest_SortOrder"),
    sort_target: reader.enumValue("sort_target", SORT_TARGETS, "etcdserverpb.RangeRequest_SortTarget"),
    serializable: reader.bool("serializable"),
    keys_only: reader.bool("keys_only"),
    count_only: reader.bool("count_only"),
    min_mod_revision: reader.int64("min_mod_revision"),
    max_mod_revision: reader.int64("max_mod_revision"),
    min_create_revision: reader.int64("min_create_revision"),
    max_create_revision: reader.int64("max_create_revision"),
  };
}

function checkRangeRequest(request: RangeRequest): void {
  keyRequired(request.key);
}

export function decodePutRequest(reader: ProtoReader): PutRequest {
  const request = readPutRequest(reader);
  checkPutRequest(request);
  return request;
}

function readPutRequest(reader: ProtoReader): PutRequest {
  return {
    key: reader.bytes("key"),
    value: reader.bytes("value"),
    lease: reader.int64("lease"),
    prev_kv: reader.bool("prev_kv"),
    ignore_value: reader.bool("ignore_value"),
    ignore_lease: reader.bool("ignore_lease"),
  };
}

function checkPutRequest(request: PutRequest): void {
  keyRequired(request.key);
  // etcd validates these at the API layer, before the proposal.
  if (request.ignore_value === true && request.value!.length > 0) {
    throw new GatewayError(Grpc.InvalidArgument, "etcdserver: value is provided");
  }
  if (request.ignore_lease === true && request.lease !== 0) {
    throw new GatewayError(Grpc.InvalidArgument, "etcdserver: lease is provided");
  }
}

export function decodeDeleteRangeRequest(reader: ProtoReader): DeleteRangeRequest {
  const request = readDeleteRangeRequest(reader);
  keyRequired(request.key);
  return request;
}

function readDeleteRangeRequest(reader: ProtoReader): DeleteRangeRequest {
  return { key: reader.bytes("key"), range_end: reader.bytes("range_end"), prev_kv: reader.bool("prev_kv") };
}

function readCompare(reader: ProtoReader): Compare {
  const compare: Compare = {
    result: reader.enumValue("result", COMPARE_RESULTS, "etcdserverpb.Compare_CompareResult"),
    target: reader.enumValue("target", COMPARE_TARGETS, "etcdserverpb.Compare_CompareTarget"),
    key: reader.bytes("key"),
    range_end: reader.bytes("range_end"),
  };
  // The oneof target_union: whichever field is present (the one matching `target` is the one compared).
  if (reader.raw("version") !== undefined) compare.version = reader.int64("version");
  if (reader.raw("create_revision") !== undefined) compare.create_revision = reader.int64("create_revision");
  if (reader.raw("mod_revision") !== undefined) compare.mod_revision = reader.int64("mod_revision");
  if (reader.raw("value") !== undefined) compare.value = reader.bytes("value");
  if (reader.raw("lease") !== undefined) compare.lease = reader.int64("lease");
  return compare;
}

/** A txn as read from JSON, before etcd's checks: an op with no request set is `undefined`. */
interface ReadTxn {
  compare: Compare[];
  success: Array<ReadOp | undefined>;
  failure: Array<ReadOp | undefined>;
}
type ReadOp = Exclude<RequestOp, { request_txn: TxnRequest }> | { request_txn: ReadTxn };

function readRequestOp(reader: ProtoReader): ReadOp | undefined {
  const range = reader.message("request_range", "etcdserverpb.RangeRequest");
  if (range !== undefined) return { request_range: readRangeRequest(range) };
  const put = reader.message("request_put", "etcdserverpb.PutRequest");
  if (put !== undefined) return { request_put: readPutRequest(put) };
  const del = reader.message("request_delete_range", "etcdserverpb.DeleteRangeRequest");
  if (del !== undefined) return { request_delete_range: readDeleteRangeRequest(del) };
  const txn = reader.message("request_txn", "etcdserverpb.TxnRequest");
  if (txn !== undefined) return { request_txn: readTxnRequest(txn) };
  return undefined;
}

function readTxnRequest(reader: ProtoReader): ReadTxn {
  return {
    compare: reader.messages("compare", "etcdserverpb.Compare").map(readCompare),
    success: reader.messages("success", "etcdserverpb.RequestOp").map(readRequestOp),
    failure: reader.messages("failure", "etcdserverpb.RequestOp").map(readRequestOp),
  };
}

/**
 * etcd's checkTxnRequest, run after the whole body parsed (so a JSON error anywhere wins over these): the op
 * count (a nested txn may hold only what its parent's count leaves of the limit), compare keys, then each op of
 * success and of failure in order. An op with no request set is "key not found", as etcd answers it.
 */
function checkTxnRequest(txn: ReadTxn, maxOps: number): TxnRequest {
  const opCount = Math.max(txn.compare.length, txn.success.length, txn.failure.length);
  if (opCount > maxOps) throw new GatewayError(Grpc.InvalidArgument, "etcdserver: too many operations in txn request");
  for (const compare of txn.compare) keyRequired(compare.key);
  const checkOp = (op: ReadOp | undefined): RequestOp => {
    if (op === undefined) throw new GatewayError(Grpc.InvalidArgument, "etcdserver: key not found");
    if ("request_range" in op) checkRangeRequest(op.request_range);
    else if ("request_put" in op) checkPutRequest(op.request_put);
    else if ("request_delete_range" in op) keyRequired(op.request_delete_range.key);
    else return { request_txn: checkTxnRequest(op.request_txn, maxOps - opCount) };
    return op;
  };
  const success = txn.success.map(checkOp);
  const failure = txn.failure.map(checkOp);
  return { compare: txn.compare, success, failure };
}

export function decodeTxnRequest(reader: ProtoReader): TxnRequest {
  return checkTxnRequest(readTxnRequest(reader), MAX_TXN_OPS);
}

export function decodeCompactionRequest(reader: ProtoReader): CompactionRequest {
  return { revision: reader.int64("revision"), physical: reader.bool("physical") };
}

export function decodeWatchCreateRequest(reader: ProtoReader): WatchCreateRequest {
  const filterValues = reader.raw("filters");
  const filters: WatchFilter[] = [];
  if (filterValues !== undefined && filterValues !== null && !Array.isArray(filterValues)) {
    // etcd (observed): a repeated field given anything but a list fails to decode; a string is taken for an enum
    // name by its JSON decoder, which then cannot store it in a list.
    if (typeof filterValues === "string") {
      throw new GatewayError(
        Grpc.InvalidArgument,
        'invalid target "slice" for enum etcdserverpb.WatchCreateRequest_FilterType',
      );
    }
    const kind =
      typeof filterValues === "object" ? "object" : typeof filterValues === "boolean" ? "bool" : typeof filterValues;
    throw new GatewayError(
      Grpc.InvalidArgument,
      `json: cannot unmarshal ${kind} into Go value of type []json.RawMessage`,
    );
  }
  if (Array.isArray(filterValues)) {
    filterValues.forEach((value, index) => {
      // etcd ignores a filter number it does not know (observed: [2] watches everything).
      if (typeof value === "number" && Number.isInteger(value) && value >= WATCH_FILTERS.length) return;
      const one = new ProtoReader({ f: filterValues[index] }, "etcdserverpb.WatchCreateRequest");
      filters.push(one.enumValue("f", WATCH_FILTERS, "etcdserverpb.WatchCreateRequest_FilterType"));
    });
  }
  const request: WatchCreateRequest = {
    key: reader.bytes("key"),
    range_end: reader.bytes("range_end"),
    start_revision: reader.int64("start_revision"),
    progress_notify: reader.bool("progress_notify"),
    filters,
    prev_kv: reader.bool("prev_kv"),
  };
  return request;
}

// ---- responses ----

export function encodeHeader(header: ReplicaHeader, revision: number | undefined): JsonObject {
  const out: JsonObject = {};
  putInt(out, "cluster_id", header.cluster_id);
  putInt(out, "member_id", header.member_id);
  putInt(out, "revision", revision);
  putInt(out, "raft_term", header.raft_term);
  return out;
}

export function encodeKeyValue(kv: KeyValue): JsonObject {
  const out: JsonObject = {};
  putBytes(out, "key", kv.key);
  putInt(out, "create_revision", kv.create_revision);
  putInt(out, "mod_revision", kv.mod_revision);
  putInt(out, "version", kv.version);
  putBytes(out, "value", kv.value);
  putInt(out, "lease", kv.lease);
  return out;
}

/** `header` is the full header for a top-level response, or only the revision inside a txn. */
type HeaderOut = JsonObject;

export function encodeRangeResponse(response: RangeResponse, header: HeaderOut): JsonObject {
  const out: JsonObject = { header };
  putList(out, "kvs", response.kvs, encodeKeyValue);
  putBool(out, "more", response.more);
  putInt(out, "count", response.count);
  return out;
}

export function encodePutResponse(response: PutResponse, header: HeaderOut): JsonObject {
  const out: JsonObject = { header };
  if (response.prev_kv !== undefined) out.prev_kv = encodeKeyValue(response.prev_kv);
  return out;
}

export function encodeDeleteRangeResponse(response: DeleteRangeResponse, header: HeaderOut): JsonObject {
  const out: JsonObject = { header };
  putInt(out, "deleted", response.deleted);
  putList(out, "prev_kvs", response.prev_kvs, encodeKeyValue);
  return out;
}

function innerHeader(revision: number): JsonObject {
  const out: JsonObject = {};
  putInt(out, "revision", revision);
  return out;
}

function opWrites(op: ResponseOp): boolean {
  if ("response_put" in op) return true;
  if ("response_delete_range" in op) return op.response_delete_range.deleted > 0;
  if ("response_txn" in op) return op.response_txn.responses.some(opWrites);
  return false;
}

/**
 * etcd gives each op of a txn its own header revision: the revision the op saw when it ran. A txn that writes
 * makes revision R; ops before its first write saw R-1, a put reports R, and everything after a write sees R.
 * A txn that writes nothing reports the current revision everywhere. The MVCC response carries only R, and
 * these rules recover the rest exactly (the ops ran in order inside one batch).
 */
export function encodeTxnResponse(response: TxnResponse, header: HeaderOut): JsonObject {
  const finalRevision = response.header.revision;
  const anyWrite = response.responses.some(opWrites);
  let written = false;
  const seen = () => (written || !anyWrite ? finalRevision : finalRevision - 1);
  const encodeOps = (txn: TxnResponse, txnHeader: HeaderOut): JsonObject => {
    const out: JsonObject = { header: txnHeader };
    putBool(out, "succeeded", txn.succeeded);
    putList(out, "responses", txn.responses, (op): JsonObject => {
      if ("response_range" in op) {
        return { response_range: encodeRangeResponse(op.response_range, innerHeader(seen())) };
      }
      if ("response_put" in op) {
        written = true;
        return { response_put: encodePutResponse(op.response_put, innerHeader(finalRevision)) };
      }
      if ("response_delete_range" in op) {
        if (op.response_delete_range.deleted > 0) written = true;
        return { response_delete_range: encodeDeleteRangeResponse(op.response_delete_range, innerHeader(seen())) };
      }
      // etcd 3.4 leaves a nested txn's own header empty (observed: "response_txn":{"header":{},...}).
      return { response_txn: encodeOps(op.response_txn, {}) };
    });
    return out;
  };
  return encodeOps(response, header);
}

export function encodeWatchEvent(event: WatchEvent): JsonObject {
  const out: JsonObject = {};
  putEnum(out, "type", event.type, "PUT");
  if (event.type === "DELETE") {
    // etcd's delete event kv holds only the key and the revision of the delete.
    const kv: JsonObject = {};
    putBytes(kv, "key", event.kv.key);
    putInt(kv, "mod_revision", event.kv.mod_revision);
    out.kv = kv;
  } else {
    out.kv = encodeKeyValue(event.kv);
  }
  if (event.prev_kv !== undefined) out.prev_kv = encodeKeyValue(event.prev_kv);
  return out;
}
