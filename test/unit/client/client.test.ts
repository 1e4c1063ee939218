// The store client against a real etcd 3.4: every call family, error mapping, failover and watch streams.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { StoreUnavailableError } from "../../../src/errors.js";
import { EtcdError, prefixEnd, StoreClient, type WatchResponse } from "../../../src/store/client.js";
import { type EtcdProcess, startEtcd } from "../../helpers/etcd.js";
import { freePort } from "../../helpers/ports.js";
import { requireTools } from "../../helpers/require-tool.js";

const tools = requireTools("store client", "etcd");
let etcd: EtcdProcess;
let client: StoreClient;

test.before(async () => {
  if (!tools) return;
  etcd = await startEtcd();
  client = new StoreClient({ endpoints: [etcd.clientUrl] });
});

test.after(async () => {
  await client?.close();
  await etcd?.stop();
});

function t(name: string, body: () => Promise<void>) {
  test(name, async () => {
    if (tools) await body();
  });
}

test("prefixEnd increments the last byte below 0xff", () => {
  assert.equal(prefixEnd("/a/").toString(), "/a0");
  assert.equal([...prefixEnd(Buffer.from([1, 0xff]))], [2]);
  assert.equal([...prefixEnd(Buffer.from([0xff]))], [0]);
});

t("put, get, range by prefix, count and keys only", async () => {
  const put = await client.put("/c/a", "1");
  assert.ok(put.header.revision >= 2);
  await client.put("/c/b", new Uint8Array([0xc3, 0xa9]));
  await client.put("/d", "x");
  assert.is(await client.get("/c/a"), "1");
  assert.is(await client.get("/c/missing"), undefined);
  const range = await client.range("/c/", { prefix: true });
  assert.equal(
    range.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]),
    [
      ["/c/a", "1"],
      ["/c/b", "é"],
    ],
  );
  assert.is(range.count, 2);
  assert.is(range.kvs[0]?.version, 1);
  const counted = await client.range("/c/", { prefix: true, countOnly: true });
  assert.is(counted.count, 2);
  assert.is(counted.kvs.length, 0);
  const keys = await client.range("/c/", { prefix: true, keysOnly: true, limit: 1 });
  assert.is(keys.kvs.length, 1);
  assert.is(keys.more, true);
  assert.is(keys.kvs[0]?.value.length, 0);
  const old = await client.range("/c/a", { revision: put.header.revision - 1 });
  assert.is(old.kvs.length, 0);
});

t("put with prev_kv, delete with prefix and prev_kv", async () => {
  await client.put("/p/x", "1");
  const second = await client.put("/p/x", "2", { prevKv: true });
  assert.is(second.prevKv?.value.toString(), "1");
  await client.put("/p/y", "3");
  const deleted = await client.deleteRange("/p/", { prefix: true, prevKv: true });
  assert.is(deleted.deleted, 2);
  assert.equal(deleted.prevKvs.map((kv) => kv.key.toString()).sort(), ["/p/x", "/p/y"]);
});

t("txn compares and branches", async () => {
  await client.put("/t/k", "v1");
  const ok = await client.txn({
    compare: [{ key: "/t/k", target: "VALUE", result: "EQUAL", value: "v1" }],
    success: [{ put: "/t/k", value: "v2" }, { range: "/t/k" }],
    failure: [{ range: "/t/k" }],
  });
  assert.is(ok.succeeded, true);
  assert.is(ok.responses[0]?.kind, "put");
  const read = ok.responses[1];
  assert.ok(read?.kind === "range");
  assert.is(read.result.kvs[0]?.value.toString(), "v2");
  const failed = await client.txn({
    compare: [{ key: "/t/k", target: "VERSION", result: "EQUAL", version: 1 }],
    failure: [{ deleteRange: "/t/k" }],
  });
  assert.is(failed.succeeded, false);
  assert.is(failed.responses[0]?.kind, "delete");
});

t("store errors carry the gRPC code and message", async () => {
  const error = await client.leaseRevoke("12345").catch((e: unknown) => e);
  assert.instance(error, EtcdError);
  assert.is((error as EtcdError).grpcCode, 5);
  assert.match((error as EtcdError).message, "lease not found");
  const empty = await client.put("", "x").catch((e: unknown) => e);
  assert.instance(empty, EtcdError);
  assert.is((empty as EtcdError).grpcCode, 3);
});

t("leases: grant, attach, keepalive, time to live, list, revoke", async () => {
  const lease = await client.leaseGrant(30);
  assert.is(lease.ttlSeconds, 30);
  await client.put("/l/k", "v", { lease: lease.id });
  const renewed = await client.leaseKeepAliveOnce(lease.id);
  assert.is(renewed.id, lease.id);
  assert.is(renewed.ttlSeconds, 30);
  const ttl = await client.leaseTimeToLive(lease.id, true);
  assert.is(ttl.grantedTtlSeconds, 30);
  assert.equal(
    ttl.keys.map((k) => k.toString()),
    ["/l/k"],
  );
  assert.ok((await client.leaseLeases()).ids.includes(lease.id));
  await client.leaseRevoke(lease.id);
  assert.is(await client.get("/l/k"), undefined);
});

t("members and status", async () => {
  const { members } = await client.memberList();
  assert.is(members.length, 1);
  assert.equal(members[0]?.clientUrls, [etcd.clientUrl]);
  const status = await client.status();
  assert.match(status.version, /^3\.4\./);
  assert.is(status.leader, members[0]?.id);
  assert.ok(status.raftIndex > 0);
});

t("member add (learner) and remove; promoting an unstarted learner is a store error", async () => {
  const peer = `http://127.0.0.1:${await freePort()}`;
  const added = await client.memberAdd([peer], true);
  assert.equal(added.member.peerUrls, [peer]);
  assert.is(added.member.isLearner, true);
  assert.is(added.members.length, 2);
  const promote = await client.memberPromote(added.member.id).catch((e: unknown) => e);
  assert.instance(promote, EtcdError);
  assert.match((promote as Error).message, "learner");
  const removed = await client.memberRemove(added.member.id);
  assert.is(removed.members.length, 1);
});

t("failover skips an endpoint that refuses connections", async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const both = new StoreClient({ endpoints: [dead, etcd.clientUrl] });
  try {
    await both.put("/f/k", "v");
    assert.is(await both.get("/f/k"), "v");
  } finally {
    await both.close();
  }
  const none = new StoreClient({ endpoints: [dead] });
  const error = await none.get("/f/k").catch((e: unknown) => e);
  await none.close();
  assert.instance(error, StoreUnavailableError);
});

t("watch delivers puts and deletes from a start revision, and cancel ends it", async () => {
  const start = (await client.put("/w/a", "1")).header.revision;
  await client.put("/w/b", "2");
  await client.deleteRange("/w/a");
  const stream = client.watch("/w/", { prefix: true, startRevision: start, prevKv: true });
  const seen: WatchResponse[] = [];
  let events = 0;
  for await (const response of stream) {
    seen.push(response);
    events += response.events.length;
    if (events >= 4) break;
    if (events === 3) await client.put("/w/c", "3");
  }
  assert.ok(seen[0]?.created);
  const all = seen.flatMap((response) => response.events);
  assert.equal(
    all.map((event) => [event.type, event.kv.key.toString()]),
    [
      ["PUT", "/w/a"],
      ["PUT", "/w/b"],
      ["DELETE", "/w/a"],
      ["PUT", "/w/c"],
    ],
  );
  assert.is(all[2]?.prevKv?.value.toString(), "1");
  stream.cancel();
});

t("a watch from a compacted revision is canceled with compact_revision", async () => {
  const first = (await client.put("/k/x", "1")).header.revision;
  const last = (await client.put("/k/x", "2")).header.revision;
  await client.compact(last);
  const error = await client.range("/k/x", { revision: first }).catch((e: unknown) => e);
  assert.ok(error instanceof EtcdError && error.compacted);
  const stream = client.watch("/k/", { prefix: true, startRevision: first });
  let canceled: WatchResponse | undefined;
  for await (const response of stream) {
    if (response.canceled) {
      canceled = response;
      break;
    }
  }
  stream.cancel();
  assert.is(canceled?.compactRevision, last);
});

test.run();
