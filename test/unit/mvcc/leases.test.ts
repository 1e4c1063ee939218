// Leases: grant (given or chosen id), attach/detach keys, revoke with delete events at one revision,
// keepalive, time-to-live, list, leader-only expiry and the refresh a new leader gives every lease.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LeaseExistsError, LeaseNotFoundError, LeaseTtlTooLargeError } from "../../../src/store/mvcc/errors.js";
import { b, s, TestStore } from "./helpers.js";

test("grant with a given id or a chosen one; duplicates and huge TTLs are refused", () => {
  const t = new TestStore();
  const given = t.run({ type: "leaseGrant", request: { ID: 100, TTL: 30 } });
  assert.equal([given.ID, given.TTL, given.error, given.header.revision], [100, 30, "", 1]);
  const chosen = t.run({ type: "leaseGrant", request: { TTL: 30 } });
  assert.ok(chosen.ID > 0 && Number.isSafeInteger(chosen.ID));
  const proposed = t.store.leases.proposeId();
  assert.ok(proposed > 0 && Number.isSafeInteger(proposed) && t.store.leases.get(proposed) === undefined);
  const dup = t.fail({ type: "leaseGrant", request: { ID: 100, TTL: 30 } });
  assert.instance(dup, LeaseExistsError);
  assert.is(dup.message, "etcdserver: lease already exists");
  assert.instance(t.fail({ type: "leaseGrant", request: { ID: 5, TTL: 9_000_000_001 } }), LeaseTtlTooLargeError);
  const short = t.run({ type: "leaseGrant", request: { ID: 6, TTL: 1 } });
  assert.is(short.TTL, 2, "raised to the minimum TTL");
  assert.equal(
    t.store.leaseList().leases.map((l) => l.ID),
    [6, 100, chosen.ID].sort((x, y) => x - y),
  );
});

test("revoke deletes the attached keys in one revision, with watch events", () => {
  const t = new TestStore();
  t.run({ type: "leaseGrant", request: { ID: 1, TTL: 60 } });
  t.put("svc/a", "1", { lease: 1 });
  t.put("svc/b", "2", { lease: 1 });
  t.put("svc/c", "3", { lease: 1 });
  t.put("svc/c", "3b"); // moved off the lease
  t.put("keep", "x");
  const ttl = t.store.timeToLive({ ID: 1, keys: true });
  assert.equal(ttl.keys.map(s), ["svc/a", "svc/b"]);
  const watcher = t.store.watch({ key: b("svc/"), range_end: b("svc0") });
  watcher.tryNext();
  const before = t.store.revision;
  const revoked = t.run({ type: "leaseRevoke", request: { ID: 1 } });
  assert.is(revoked.header.revision, before + 1);
  assert.equal(t.keys(), ["keep", "svc/c"]);
  const message = watcher.tryNext()!;
  assert.equal(
    message.events.map((e) => `${e.type} ${s(e.kv.key)}@${e.kv.mod_revision}`),
    [`DELETE svc/a@${before + 1}`, `DELETE svc/b@${before + 1}`],
  );
  const again = t.fail({ type: "leaseRevoke", request: { ID: 1 } });
  assert.instance(again, LeaseNotFoundError);
  assert.is(t.store.timeToLive({ ID: 1 }).TTL, -1);
});

test("expiry is decided only on the leader; keepalive renews; a new leader extends every lease", () => {
  const t = new TestStore();
  t.run({ type: "leaseGrant", request: { ID: 1, TTL: 10 } });
  t.run({ type: "leaseGrant", request: { ID: 2, TTL: 20 } });
  t.nowMs += 60_000;
  assert.equal(t.store.expiredLeases(), [], "a follower never expires leases");
  t.store.promoteLeases(3_000);
  assert.is(t.store.timeToLive({ ID: 1 }).TTL, 13, "full TTL plus the election allowance");
  t.nowMs += 12_000;
  assert.equal(t.store.expiredLeases(), []);
  t.nowMs += 1_000;
  assert.equal(t.store.expiredLeases(), [1]);
  const renewed = t.store.keepAlive(1);
  assert.equal([renewed.ID, renewed.TTL], [1, 10]);
  assert.equal(t.store.expiredLeases(), []);
  t.nowMs += 20_000;
  assert.equal(t.store.expiredLeases(), [1, 2], "by deadline, then id");
  assert.throws(
    () => t.store.keepAlive(99),
    (e: unknown) => e instanceof LeaseNotFoundError,
  );
  t.store.demoteLeases();
  assert.equal(t.store.expiredLeases(), []);
  assert.is(t.store.timeToLive({ ID: 2 }).TTL, 20);
});

test("leases and their keys survive snapshot and restore", () => {
  const t = new TestStore();
  t.run({ type: "leaseGrant", request: { ID: 9, TTL: 60 } });
  t.put("a", "1", { lease: 9 });
  const copy = new TestStore();
  copy.store.restore(t.store.snapshot());
  assert.equal(copy.store.timeToLive({ ID: 9, keys: true }).keys.map(s), ["a"]);
  copy.store.apply({ type: "leaseRevoke", request: { ID: 9 } }, copy.store.appliedIndex + 1);
  assert.equal(copy.keys(), []);
});

test.run();
