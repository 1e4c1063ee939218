// The key space's request semantics, compared with what etcd 3.4 answers: revisions, ranges, put flags,
// deletes, txns and compaction (errors included).
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { TxnResponse } from "../../../src/store/mvcc/commands.js";
import {
  CompactedError,
  DuplicateKeyError,
  FutureRevisionError,
  KeyNotFoundError,
  KeyNotProvidedError,
  LeaseNotFoundError,
  LeaseProvidedError,
  TooManyTxnOpsError,
  ValueProvidedError,
} from "../../../src/store/mvcc/errors.js";
import { prefixRangeEnd } from "../../../src/store/mvcc/ranges.js";
import { b, delOp, getOp, putOp, s, TestStore } from "./helpers.js";

test("a fresh store is at revision 1; each write adds one; create/mod/version follow etcd", () => {
  const t = new TestStore();
  assert.is(t.store.revision, 1);
  assert.is(t.put("a", "1").header.revision, 2);
  assert.is(t.put("a", "2").header.revision, 3);
  const kv = t.get("a")!;
  assert.equal([kv.create_revision, kv.mod_revision, kv.version, s(kv.value)], [2, 3, 2, "2"]);
  t.del("a");
  t.put("a", "3");
  const again = t.get("a")!;
  assert.equal([again.create_revision, again.mod_revision, again.version], [5, 5, 1], "a delete starts a new life");
});

test("range: single key, prefix, [key, end), all keys, limit/more/count, keys_only, count_only", () => {
  const t = new TestStore();
  for (const k of ["a", "b/1", "b/2", "b/3", "c", "\u00ffz"]) t.put(k, `v-${k}`);
  assert.equal(t.keys("b/"), ["b/1", "b/2", "b/3"]);
  const all = t.store.range({ key: b("\0"), range_end: b("\0") });
  assert.is(all.count, 6);
  assert.equal(
    all.kvs.map((kv) => s(kv.key)),
    ["a", "b/1", "b/2", "b/3", "c", "\u00ffz"],
  );
  const fromB = t.store.range({ key: b("b/2"), range_end: b("\0") });
  assert.equal(
    fromB.kvs.map((kv) => s(kv.key)),
    ["b/2", "b/3", "c", "\u00ffz"],
  );
  const interval = t.store.range({ key: b("a"), range_end: b("b/3") });
  assert.equal(
    interval.kvs.map((kv) => s(kv.key)),
    ["a", "b/1", "b/2"],
  );
  const limited = t.store.range({ key: b("b/"), range_end: prefixRangeEnd(b("b/")), limit: 2 });
  assert.equal([limited.kvs.length, limited.more, limited.count], [2, true, 3]);
  const exact = t.store.range({ key: b("b/"), range_end: prefixRangeEnd(b("b/")), limit: 3 });
  assert.equal([exact.kvs.length, exact.more, exact.count], [3, false, 3]);
  const keysOnly = t.store.range({ key: b("a"), keys_only: true });
  assert.is(keysOnly.kvs[0]!.value.length, 0);
  assert.is(s(keysOnly.kvs[0]!.key), "a");
  const countOnly = t.store.range({ key: b("\0"), range_end: b("\0"), count_only: true });
  assert.equal([countOnly.kvs.length, countOnly.count, countOnly.more], [0, 6, false]);
  const missing = t.store.range({ key: b("nope") });
  assert.equal([missing.kvs.length, missing.count, missing.more], [0, 0, false]);
  assert.throws(
    () => t.store.range({ key: b("") }),
    (e: unknown) => e instanceof KeyNotProvidedError,
  );
});

test("range: sort by every target, both orders; limit applies after sorting", () => {
  const t = new TestStore();
  t.put("k1", "c");
  t.put("k2", "a");
  t.put("k3", "b");
  t.put("k2", "a2");
  const keysOf = (r: { kvs: { key: Uint8Array }[] }) => r.kvs.map((kv) => s(kv.key));
  const range = { key: b("k"), range_end: b("l") };
  assert.equal(keysOf(t.store.range({ ...range, sort_order: "DESCEND" })), ["k3", "k2", "k1"]);
  assert.equal(keysOf(t.store.range({ ...range, sort_target: "VALUE" })), ["k2", "k3", "k1"], "ASCEND by default");
  assert.equal(keysOf(t.store.range({ ...range, sort_target: "MOD", sort_order: "DESCEND" })), ["k2", "k3", "k1"]);
  assert.equal(keysOf(t.store.range({ ...range, sort_target: "CREATE", sort_order: "DESCEND" })), ["k3", "k2", "k1"]);
  assert.equal(keysOf(t.store.range({ ...range, sort_target: "VERSION", sort_order: "DESCEND" })), ["k2", "k1", "k3"]);
  const top = t.store.range({ ...range, sort_target: "MOD", sort_order: "DESCEND", limit: 1 });
  assert.equal([keysOf(top), top.more, top.count], [["k2"], true, 3]);
});

test("range: revision filters prune kvs but count covers the whole range (etcd)", () => {
  const t = new TestStore();
  t.put("f/a", "1"); // rev 2
  t.put("f/b", "2"); // rev 3
  t.put("f/c", "3"); // rev 4
  const range = { key: b("f/"), range_end: b("f0") };
  const filtered = t.store.range({ ...range, min_mod_revision: 3 });
  assert.equal([filtered.kvs.map((kv) => s(kv.key)), filtered.count, filtered.more], [["f/b", "f/c"], 3, false]);
  const limited = t.store.range({ ...range, min_mod_revision: 3, limit: 1 });
  assert.equal([limited.kvs.map((kv) => s(kv.key)), limited.count, limited.more], [["f/b"], 3, true]);
  const created = t.store.range({ ...range, max_create_revision: 2 });
  assert.equal(
    created.kvs.map((kv) => s(kv.key)),
    ["f/a"],
  );
});

test("range at a past revision, compaction and its errors", () => {
  const t = new TestStore();
  t.put("x", "1"); // rev 2
  t.put("x", "2"); // rev 3
  t.del("x"); // rev 4
  t.put("y", "1"); // rev 5
  assert.is(s(t.store.range({ key: b("x"), revision: 2 }).kvs[0]!.value), "1");
  assert.is(s(t.store.range({ key: b("x"), revision: 3 }).kvs[0]!.value), "2");
  assert.is(t.store.range({ key: b("x"), revision: 4 }).kvs.length, 0);
  assert.is(t.store.range({ key: b("x"), revision: 4 }).header.revision, 5, "header is the current revision");
  assert.throws(
    () => t.store.range({ key: b("x"), revision: 6 }),
    (e: unknown) => e instanceof FutureRevisionError,
  );
  t.run({ type: "compaction", request: { revision: 3 } });
  assert.is(
    s(t.store.range({ key: b("x"), revision: 3 }).kvs[0]!.value),
    "2",
    "the compacted revision itself is readable",
  );
  const compacted = (() => {
    try {
      t.store.range({ key: b("x"), revision: 2 });
    } catch (error) {
      return error;
    }
  })();
  assert.instance(compacted, CompactedError);
  assert.is((compacted as Error).message, "etcdserver: mvcc: required revision has been compacted");
  assert.instance(t.fail({ type: "compaction", request: { revision: 3 } }), CompactedError);
  const future = t.fail({ type: "compaction", request: { revision: 99 } });
  assert.instance(future, FutureRevisionError);
  assert.is(future.message, "etcdserver: mvcc: required revision is a future revision");
  t.run({ type: "compaction", request: { revision: 5 } });
  assert.is(t.store.indexedKeyCount, 1, "a key deleted before the compaction point is gone from the index");
});

test("compaction at revision 0 or below, as etcd 3.4.23 answers it (its compaction revision starts at -1)", () => {
  const fresh = new TestStore();
  assert.instance(fresh.fail({ type: "compaction", request: { revision: -1 } }), CompactedError);
  assert.is(fresh.run({ type: "compaction", request: { revision: 0 } }).header.revision, 1, "the first 0 succeeds");
  assert.instance(fresh.fail({ type: "compaction", request: { revision: 0 } }), CompactedError, "then 0 is compacted");
  assert.is(fresh.run({ type: "compaction", request: { revision: 1 } }).header.revision, 1);
  assert.instance(fresh.fail({ type: "compaction", request: { revision: 1 } }), CompactedError);
  const written = new TestStore();
  written.put("a", "1");
  written.run({ type: "compaction", request: { revision: 2 } });
  assert.instance(written.fail({ type: "compaction", request: { revision: 0 } }), CompactedError);
  assert.is(s(written.store.range({ key: b("a") }).kvs[0]!.value), "1");
});

test("compactionTarget proposes keeping the last N revisions, once per new point", () => {
  const t = new TestStore();
  assert.is(t.store.compactionTarget(5), null);
  for (let i = 0; i < 10; i++) t.put("k", `${i}`);
  assert.is(t.store.historySize, 10);
  const target = t.store.compactionTarget(5);
  assert.is(target, 6);
  t.run({ type: "compaction", request: { revision: target! } });
  assert.is(t.store.compactionTarget(5), null);
  assert.is(t.store.historySize, 6, "revisions 6..11 stay");
});

test("put: prev_kv, ignore_value, ignore_lease and their errors", () => {
  const t = new TestStore();
  const lease = t.run({ type: "leaseGrant", request: { ID: 7, TTL: 60 } });
  assert.is(lease.ID, 7);
  t.put("k", "v1", { lease: 7 });
  const second = t.put("k", "v2", { prev_kv: true });
  assert.is(s(second.prev_kv!.value), "v1");
  assert.is(second.prev_kv!.lease, 7);
  assert.is(t.put("new", "x", { prev_kv: true }).prev_kv, undefined);
  t.run({ type: "put", request: { key: b("k"), lease: 7, ignore_value: true } });
  assert.equal([t.value("k"), t.get("k")!.lease], ["v2", 7]);
  t.run({ type: "put", request: { key: b("k"), value: b("v3"), ignore_lease: true } });
  assert.equal([t.value("k"), t.get("k")!.lease], ["v3", 7]);
  const e1 = t.fail({ type: "put", request: { key: b("absent"), ignore_value: true } });
  assert.instance(e1, KeyNotFoundError);
  assert.is(e1.message, "etcdserver: key not found");
  assert.instance(
    t.fail({ type: "put", request: { key: b("k"), value: b("x"), ignore_value: true } }),
    ValueProvidedError,
  );
  assert.instance(t.fail({ type: "put", request: { key: b("k"), lease: 7, ignore_lease: true } }), LeaseProvidedError);
  const e2 = t.fail({ type: "put", request: { key: b("k"), value: b("x"), lease: 99 } });
  assert.instance(e2, LeaseNotFoundError);
  assert.is(e2.message, "etcdserver: requested lease not found");
  assert.instance(t.fail({ type: "put", request: { key: b(""), value: b("x") } }), KeyNotProvidedError);
  assert.is(t.store.revision, 6, "failed requests change nothing");
});

test("deleteRange: count, prev_kvs, and no revision bump when nothing matched", () => {
  const t = new TestStore();
  t.put("d/1", "a");
  t.put("d/2", "b");
  t.put("e", "c");
  const response = t.del("d/", "d0");
  assert.is(response.deleted, 2);
  assert.equal(
    response.prev_kvs.map((kv) => s(kv.value)),
    ["a", "b"],
  );
  assert.is(response.header.revision, 5, "both deletes share one revision");
  const none = t.del("zzz");
  assert.equal([none.deleted, none.header.revision, t.store.revision], [0, 5, 5]);
});

test("txn: compares on every target and result, success/failure branches, one shared revision", () => {
  const t = new TestStore();
  t.run({ type: "leaseGrant", request: { ID: 5, TTL: 60 } });
  t.put("a", "10", { lease: 5 }); // rev 2
  const cmp = (
    target: "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE",
    result: "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL",
    operand: number | string,
  ) => {
    const base = { key: b("a"), target, result } as const;
    switch (target) {
      case "VERSION":
        return { ...base, version: operand as number };
      case "CREATE":
        return { ...base, create_revision: operand as number };
      case "MOD":
        return { ...base, mod_revision: operand as number };
      case "VALUE":
        return { ...base, value: b(operand as string) };
      case "LEASE":
        return { ...base, lease: operand as number };
    }
  };
  const check = (compare: ReturnType<typeof cmp>, expected: boolean) => {
    const r = t.run({ type: "txn", request: { compare: [compare], success: [getOp("a")], failure: [] } });
    assert.is(r.succeeded, expected, JSON.stringify({ ...compare, key: "a" }));
  };
  check(cmp("VERSION", "EQUAL", 1), true);
  check(cmp("VERSION", "GREATER", 0), true);
  check(cmp("VERSION", "LESS", 1), false);
  check(cmp("CREATE", "EQUAL", 2), true);
  check(cmp("MOD", "NOT_EQUAL", 2), false);
  check(cmp("MOD", "LESS", 3), true);
  check(cmp("VALUE", "EQUAL", "10"), true);
  check(cmp("VALUE", "GREATER", "1"), true);
  check(cmp("VALUE", "LESS", "2"), true);
  check(cmp("LEASE", "EQUAL", 5), true);
  check(cmp("LEASE", "NOT_EQUAL", 0), true);
  // A missing key compares as zeros, except by value.
  const missing = (compare: object, expected: boolean) => {
    const r = t.run({ type: "txn", request: { compare: [{ key: b("nope"), ...compare } as never] } });
    assert.is(r.succeeded, expected);
  };
  missing({ target: "VERSION", result: "EQUAL", version: 0 }, true);
  missing({ target: "CREATE", result: "EQUAL", create_revision: 0 }, true);
  missing({ target: "VALUE", result: "NOT_EQUAL", value: b("x") }, false);

  const before = t.store.revision;
  const r: TxnResponse = t.run({
    type: "txn",
    request: {
      compare: [cmp("VALUE", "EQUAL", "10")],
      success: [putOp("b", "1"), putOp("c", "2"), getOp("b"), delOp("a")],
      failure: [putOp("never", "x")],
    },
  });
  assert.ok(r.succeeded);
  assert.is(r.header.revision, before + 1, "all writes of a txn share one revision");
  const seen = (r.responses[2] as { response_range: { kvs: { value: Uint8Array }[] } }).response_range;
  assert.is(s(seen.kvs[0]!.value), "1", "a txn reads its own writes");
  assert.equal([t.value("b"), t.value("c"), t.value("a"), t.value("never")], ["1", "2", undefined, undefined]);
  const failed = t.run({ type: "txn", request: { compare: [cmp("VERSION", "EQUAL", 9)], failure: [getOp("b")] } });
  assert.equal([failed.succeeded, failed.header.revision], [false, before + 1], "a read-only txn keeps the revision");
});

test("txn: nested txns, range compares, duplicate keys and too many ops", () => {
  const t = new TestStore();
  t.put("p/1", "1");
  t.put("p/2", "1");
  const nested = t.run({
    type: "txn",
    request: {
      compare: [{ key: b("p/"), range_end: b("p0"), target: "VALUE", result: "EQUAL", value: b("1") }],
      success: [{ request_txn: { compare: [], success: [putOp("q", "inner")], failure: [] } }, putOp("r", "outer")],
    },
  });
  assert.ok(nested.succeeded);
  assert.equal([t.value("q"), t.value("r")], ["inner", "outer"]);
  const dup = t.fail({ type: "txn", request: { success: [putOp("k", "1"), putOp("k", "2")] } });
  assert.instance(dup, DuplicateKeyError);
  assert.is(dup.message, "etcdserver: duplicate key given in txn request");
  assert.instance(
    t.fail({ type: "txn", request: { success: [putOp("p/1", "x"), delOp("p/", "p0")] } }),
    DuplicateKeyError,
  );
  assert.instance(
    t.fail({ type: "txn", request: { success: [putOp("k", "1"), { request_txn: { success: [putOp("k", "2")] } }] } }),
    DuplicateKeyError,
  );
  const branches = t.run({
    type: "txn",
    request: { success: [{ request_txn: { success: [putOp("z", "1")], failure: [putOp("z", "2")] } }] },
  });
  assert.ok(branches.succeeded, "the same key in both branches of one nested txn is fine");
  t.run({ type: "txn", request: { success: [delOp("p/1"), delOp("p/", "p0")] } });
  const ops = Array.from({ length: 129 }, (_, i) => putOp(`k${i}`, "v"));
  const tooMany = t.fail({ type: "txn", request: { success: ops } });
  assert.instance(tooMany, TooManyTxnOpsError);
  assert.is(tooMany.message, "etcdserver: too many operations in txn request");
  assert.instance(
    t.fail({ type: "txn", request: { success: [putOp("ok", "1"), { request_put: { key: b("l"), lease: 9 } }] } }),
    LeaseNotFoundError,
  );
  assert.is(t.value("ok"), undefined, "a txn failing its checks writes nothing");
});

test("txn: nested compares are decided on the state before the txn, like etcd, and checked before anything runs", () => {
  const t = new TestStore();
  const nestedOnK = (inner: object) => ({
    request_txn: {
      compare: [{ key: b("k"), target: "VERSION" as const, result: "EQUAL" as const, version: 1 }],
      ...inner,
    },
  });
  const r = t.run({
    type: "txn",
    request: {
      success: [
        putOp("k", "1"),
        nestedOnK({ success: [{ request_put: { key: b("x"), lease: 999 } }], failure: [putOp("y", "1")] }),
      ],
    },
  });
  assert.ok(r.succeeded);
  const inner = (r.responses[1] as { response_txn: { succeeded: boolean } }).response_txn;
  assert.is(inner.succeeded, false, "version(k) was 0 before the txn");
  assert.equal([t.value("k"), t.value("y"), t.value("x")], ["1", "1", undefined]);
  const bad = t.fail({
    type: "txn",
    request: { success: [putOp("z", "1"), nestedOnK({ success: [{ request_put: { key: b("w"), lease: 999 } }] })] },
  });
  assert.instance(bad, LeaseNotFoundError);
  assert.is(t.value("z"), undefined, "nothing of a failed txn is applied");
});

test("errors carry stable codes and gRPC codes for the gateway", () => {
  const t = new TestStore();
  const e = t.fail({ type: "put", request: { key: b("k"), lease: 1 } }) as LeaseNotFoundError;
  assert.equal([e.code, e.grpcCode], ["VIGIE_ERR_LEASE_NOT_FOUND", 5]);
  const c = new CompactedError(3);
  assert.equal([c.code, c.grpcCode], ["VIGIE_ERR_COMPACTED", 11]);
});

test("apply must see strictly increasing Raft indexes; markApplied records no-op entries", () => {
  const t = new TestStore();
  t.store.apply({ type: "put", request: { key: b("a") } }, 5);
  t.store.markApplied(6);
  assert.is(t.store.appliedIndex, 6);
  assert.throws(() => t.store.apply({ type: "put", request: { key: b("a") } }, 6));
});

test.run();
