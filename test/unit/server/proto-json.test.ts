// The gateway's JSON mapping: Go-compatible parsing errors, proto3 defaults omitted, etcd's field names.
import * as fc from "fast-check";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LeaseNotFoundError } from "../../../src/store/mvcc/errors.js";
import { encodeMember, encodeStatus } from "../../../src/store/server/admin-codec.js";
import { GatewayError, httpStatusForGrpcCode, toGatewayError } from "../../../src/store/server/errors.js";
import { JsonStreamError, JsonValueSplitter, scanJsonValue } from "../../../src/store/server/json-scan.js";
import {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeTxnRequest,
  encodeKeyValue,
  encodeRangeResponse,
  encodeTxnResponse,
  encodeWatchEvent,
} from "../../../src/store/server/kv-codec.js";
import { decodeBase64, decodeInt64, lowerCamel, ProtoReader } from "../../../src/store/server/proto-json.js";

function errorOf(run: () => unknown): GatewayError {
  try {
    run();
  } catch (error) {
    assert.instance(error, GatewayError);
    return error as GatewayError;
  }
  throw new Error("expected a GatewayError");
}

const reader = (value: unknown) => ProtoReader.ofBody(value, "etcdserverpb.RangeRequest");
const b64 = (text: string) => Buffer.from(text).toString("base64");

test("scanJsonValue finds the end of the first value and words errors like Go", () => {
  assert.equal(scanJsonValue('{"a":[1,2,{"b":"x\\"y"}]} trailing'), { ok: true, end: 24 });
  assert.equal(scanJsonValue('{"key":"YQ==",'), { ok: false, eof: true, message: "unexpected EOF" });
  assert.equal(scanJsonValue("{x}"), {
    ok: false,
    eof: false,
    message: "invalid character 'x' looking for beginning of object key string",
  });
  assert.equal(scanJsonValue('{"a" 1}'), { ok: false, eof: false, message: "invalid character '1' after object key" });
  assert.equal(scanJsonValue("tru!"), {
    ok: false,
    eof: false,
    message: "invalid character '!' in literal true (expecting 'e')",
  });
  assert.equal(scanJsonValue("[".repeat(5000)).ok, false);
});

test("scanJsonValue agrees with JSON.parse on arbitrary JSON", () => {
  fc.assert(
    fc.property(fc.json(), (text) => {
      const result = scanJsonValue(text);
      assert.ok(result.ok);
      if (result.ok) assert.equal(JSON.parse(text.slice(0, result.end)), JSON.parse(text));
    }),
  );
});

test("JsonValueSplitter cuts a streamed body at any chunk boundary", () => {
  const body = Buffer.from(
    '{"create_request":{"key":"w6k="}}\n{"progress_request":{}} {"cancel_request":{"watch_id":"1"}}',
  );
  for (let cut = 0; cut <= body.length; cut++) {
    const splitter = new JsonValueSplitter(1024);
    const values = [...splitter.push(body.subarray(0, cut)), ...splitter.push(body.subarray(cut)), ...splitter.end()];
    assert.equal(
      values.map((v) => Object.keys(JSON.parse(v))[0]),
      ["create_request", "progress_request", "cancel_request"],
    );
  }
  const truncated = new JsonValueSplitter(1024);
  truncated.push(Buffer.from('{"ID":"1"}{"ID":'));
  assert.throws(
    () => truncated.end(),
    (e: unknown) => e instanceof JsonStreamError && e.message === "unexpected EOF",
  );
  const huge = new JsonValueSplitter(10);
  assert.throws(() => huge.push(Buffer.from('{"key":"aaaaaaaaaaaaaaaa')), /too large/);
});

test("base64 is as strict as Go's StdEncoding", () => {
  assert.equal(decodeBase64("YQ==").toString(), "a");
  assert.equal(decodeBase64("YWI=").toString(), "ab");
  assert.equal(decodeBase64("").length, 0);
  assert.is(errorOf(() => decodeBase64("!!!")).message, "illegal base64 data at input byte 0");
  assert.is(errorOf(() => decodeBase64("YQ")).message, "illegal base64 data at input byte 0");
  assert.is(errorOf(() => decodeBase64("_-8=")).message, "illegal base64 data at input byte 0");
  assert.is(errorOf(() => decodeBase64("YWJj!")).message, "illegal base64 data at input byte 4");
  assert.is(errorOf(() => decodeBase64("YQ==YQ==")).message, "illegal base64 data at input byte 4");
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      assert.equal([...decodeBase64(Buffer.from(bytes).toString("base64"))], [...bytes]);
    }),
  );
});

test("int64 accepts numbers and decimal strings; refuses the rest with Go's messages", () => {
  assert.is(decodeInt64("5"), 5);
  assert.is(decodeInt64(-3), -3);
  assert.is(errorOf(() => decodeInt64("x")).message, "invalid character 'x' looking for beginning of value");
  assert.is(errorOf(() => decodeInt64(1.5)).message, "json: cannot unmarshal number 1.5 into Go value of type int64");
  assert.is(errorOf(() => decodeInt64(true)).message, "json: cannot unmarshal bool into Go value of type int64");
  assert.is(decodeInt64("9223372036854775807"), Number.MAX_SAFE_INTEGER);
  assert.is(errorOf(() => decodeInt64("9223372036854775808")).grpcCode, 3);
  assert.is(decodeInt64("13320036720210469211", true), Number.MAX_SAFE_INTEGER);
});

test("fields are read by proto name or lowerCamel, exactly", () => {
  assert.is(lowerCamel("prev_kv"), "prevKv");
  assert.is(lowerCamel("TTL"), "TTL");
  const put = decodePutRequest(reader({ key: b64("k"), value: b64("v"), prevKv: true, lease: "7" }));
  assert.equal([Buffer.from(put.key).toString(), put.prev_kv, put.lease], ["k", true, 7]);
  const range = decodeRangeRequest(reader({ key: b64("k"), sort_order: 2, sortTarget: "MOD", keysOnly: true }));
  assert.equal([range.sort_order, range.sort_target, range.keys_only], ["DESCEND", "MOD", true]);
  assert.is(
    errorOf(() => decodeRangeRequest(reader({ key: b64("k"), sort_order: "BAD" }))).message,
    'unknown value "BAD" for enum etcdserverpb.RangeRequest_SortOrder',
  );
  assert.is(
    errorOf(() => decodeRangeRequest(reader({ key: b64("k"), serializable: "true" }))).message,
    "json: cannot unmarshal string into Go value of type bool",
  );
  assert.is(
    errorOf(() => decodeRangeRequest(reader({ key: 5 }))).message,
    "json: cannot unmarshal number into Go value of type []uint8",
  );
  assert.is(
    errorOf(() => reader([1])).message,
    "json: cannot unmarshal array into Go value of type map[string]json.RawMessage",
  );
});

test("requests are validated like etcd's API layer", () => {
  assert.is(errorOf(() => decodeRangeRequest(reader({}))).message, "etcdserver: key is not provided");
  assert.is(errorOf(() => decodeRangeRequest(reader(null))).message, "etcdserver: key is not provided");
  assert.is(errorOf(() => decodeDeleteRangeRequest(reader({ key: "" }))).message, "etcdserver: key is not provided");
  assert.is(
    errorOf(() => decodePutRequest(reader({ key: b64("k"), value: b64("v"), ignore_value: true }))).message,
    "etcdserver: value is provided",
  );
  assert.is(
    errorOf(() => decodePutRequest(reader({ key: b64("k"), lease: "1", ignore_lease: true }))).message,
    "etcdserver: lease is provided",
  );
  const ops = Array.from({ length: 129 }, (_, i) => ({ request_put: { key: b64(`k${i}`) } }));
  assert.is(
    errorOf(() => decodeTxnRequest(reader({ success: ops }))).message,
    "etcdserver: too many operations in txn request",
  );
  const txn = decodeTxnRequest(
    reader({
      compare: [{ key: b64("a"), target: "VALUE", result: "EQUAL", value: b64("1") }],
      success: [{ requestRange: { key: b64("a") } }],
      failure: [{ request_delete_range: { key: b64("b") } }],
    }),
  );
  assert.is(txn.compare![0]!.target, "VALUE");
  assert.ok("request_range" in txn.success![0]!);
  assert.ok("request_delete_range" in txn.failure![0]!);
});

test("responses omit proto3 defaults and write int64 as strings", () => {
  const kv = {
    key: Buffer.from("a"),
    value: Buffer.alloc(0),
    create_revision: 2,
    mod_revision: 3,
    version: 2,
    lease: 0,
  };
  assert.equal(encodeKeyValue(kv), { key: "YQ==", create_revision: "2", mod_revision: "3", version: "2" });
  const header = { revision: "3" };
  assert.equal(encodeRangeResponse({ header: { revision: 3 }, kvs: [], more: false, count: 0 }, header), { header });
  assert.equal(encodeTxnResponse({ header: { revision: 3 }, succeeded: false, responses: [] }, header), { header });
  assert.equal(encodeWatchEvent({ type: "DELETE", kv: { ...kv, value: Buffer.from("x") } }), {
    type: "DELETE",
    kv: { key: "YQ==", mod_revision: "3" },
  });
  assert.equal(encodeWatchEvent({ type: "PUT", kv }), { kv: encodeKeyValue(kv) });
  assert.equal(encodeMember({ ID: 12, name: "", peerURLs: ["http://127.0.0.1:1"], clientURLs: [], isLearner: true }), {
    ID: "12",
    peerURLs: ["http://127.0.0.1:1"],
    isLearner: true,
  });
  const status = encodeStatus(
    {
      header: { cluster_id: 1, member_id: 2, revision: 3, raft_term: 4 },
      version: "3.4.0",
      dbSize: 100,
      leader: 2,
      raftIndex: 9,
      raftTerm: 4,
      raftAppliedIndex: 9,
      isLearner: false,
      errors: [],
      name: "n",
      role: "leader",
    },
    header,
  );
  assert.equal(Object.keys(status), [
    "header",
    "version",
    "dbSize",
    "leader",
    "raftIndex",
    "raftTerm",
    "raftAppliedIndex",
    "dbSizeInUse",
  ]);
});

test("errors map to etcd's body and HTTP status", () => {
  const mapped = toGatewayError(new LeaseNotFoundError()).error;
  assert.equal(mapped.body(), {
    error: "etcdserver: requested lease not found",
    message: "etcdserver: requested lease not found",
    code: 5,
  });
  assert.is(mapped.httpStatus, 404);
  assert.is(httpStatusForGrpcCode(9), 412);
  assert.is(httpStatusForGrpcCode(11), 400);
  assert.is(httpStatusForGrpcCode(14), 503);
  const internal = toGatewayError(new TypeError("boom"));
  assert.ok(internal.unexpected);
  assert.is(internal.error.httpStatus, 500);
});

test.run();
