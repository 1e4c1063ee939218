// The remaining TTL that time-to-live reports, against what etcd 3.4 answers (measured on a 3-member etcd 3.4
// cluster): etcd truncates the remaining duration to whole seconds, so a lease granted for 10 s reads 9 a moment
// after the grant, and a lease refreshed by a new leader (full TTL plus one election timeout) reads the granted
// TTL, never more, once any time has passed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { TestStore } from "./helpers.js";

function leaderStore(): TestStore {
  const t = new TestStore();
  t.store.promoteLeases(0);
  return t;
}

test("a moment after a grant the remaining TTL is one less than granted (etcd: granted 10, remaining 9)", () => {
  const t = leaderStore();
  t.run({ type: "leaseGrant", request: { ID: 1, TTL: 10 } });
  assert.is(t.store.timeToLive({ ID: 1 }).TTL, 10, "no time has passed at all");
  t.nowMs += 1;
  const ttl = t.store.timeToLive({ ID: 1 });
  assert.equal([ttl.TTL, ttl.grantedTTL], [9, 10]);
  t.nowMs += 998;
  assert.is(t.store.timeToLive({ ID: 1 }).TTL, 9);
  t.nowMs += 1;
  assert.is(t.store.timeToLive({ ID: 1 }).TTL, 9, "exactly 1 s later: 9 s left");
  t.nowMs += 1;
  assert.is(t.store.timeToLive({ ID: 1 }).TTL, 8);
});

test("after a keepalive the lease reads one less than its TTL, as on etcd", () => {
  const t = leaderStore();
  t.run({ type: "leaseGrant", request: { ID: 7, TTL: 5 } });
  t.nowMs += 3_500;
  assert.is(t.store.timeToLive({ ID: 7 }).TTL, 1);
  assert.is(t.store.keepAlive(7).TTL, 5, "keepalive answers the granted TTL");
  t.nowMs += 10;
  assert.is(t.store.timeToLive({ ID: 7 }).TTL, 4);
});

test("a new leader's election allowance never shows a remaining TTL above the granted one", () => {
  const t = new TestStore();
  t.run({ type: "leaseGrant", request: { ID: 3, TTL: 5 } });
  t.store.promoteLeases(1_000);
  t.nowMs += 1;
  const ttl = t.store.timeToLive({ ID: 3 });
  assert.equal([ttl.TTL, ttl.grantedTTL], [5, 5]);
  t.nowMs += 5_998;
  assert.is(t.store.timeToLive({ ID: 3 }).TTL, 0, "less than a second left");
  assert.equal(t.store.expiredLeases(), []);
});

test("a lease past its deadline but not yet revoked reads 0, not a negative TTL", () => {
  const t = leaderStore();
  t.run({ type: "leaseGrant", request: { ID: 4, TTL: 2 } });
  t.nowMs += 2_400;
  assert.is(t.store.timeToLive({ ID: 4 }).TTL, 0);
  assert.equal(t.store.expiredLeases(), [4]);
  t.run({ type: "leaseRevoke", request: { ID: 4 } });
  assert.is(t.store.timeToLive({ ID: 4 }).TTL, -1, "revoked: -1 like a lease that never existed");
});

test.run();
