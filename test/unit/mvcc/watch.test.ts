// The watch hub: live and historical events, prev_kv, filters, progress, compaction and slow consumers.
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { WatchResponse } from "../../../src/store/mvcc/watch-types.js";
import type { Watcher } from "../../../src/store/mvcc/watcher.js";
import { b, putOp, s, TestStore } from "./helpers.js";

function drain(watcher: Watcher): WatchResponse[] {
  const out: WatchResponse[] = [];
  for (let r = watcher.tryNext(); r !== undefined; r = watcher.tryNext()) out.push(r);
  return out;
}

function describe(responses: WatchResponse[]): string[] {
  return responses.flatMap((r) =>
    r.events.map((e) => `${e.type} ${s(e.kv.key)}=${s(e.kv.value)}@${e.kv.mod_revision}`),
  );
}

test("a key watch gets created, then live events in order; other keys are ignored", () => {
  const t = new TestStore();
  const w = t.store.watch({ key: b("k") });
  const created = drain(w);
  assert.equal([created.length, created[0]!.created, created[0]!.header.revision], [1, true, 1]);
  t.put("k", "1");
  t.put("other", "x");
  t.put("k", "2");
  t.del("k");
  assert.equal(describe(drain(w)), ["PUT k=1@2", "PUT k=2@4", "DELETE k=@5"]);
});

test("a delete event's kv holds only key and mod_revision; prev_kv carries the old value", () => {
  const t = new TestStore();
  t.put("k", "old");
  const w = t.store.watch({ key: b("k"), prev_kv: true });
  drain(w);
  t.put("k", "new");
  t.del("k");
  const events = drain(w).flatMap((r) => r.events);
  assert.is(s(events[0]!.prev_kv!.value), "old");
  assert.equal(
    [events[1]!.type, events[1]!.kv.create_revision, events[1]!.kv.version, events[1]!.kv.value.length],
    ["DELETE", 0, 0, 0],
  );
  assert.is(s(events[1]!.prev_kv!.value), "new");
});

test("a watch from a past revision replays history, then continues live without gaps", () => {
  const t = new TestStore();
  for (let i = 1; i <= 5; i++) t.put(`p/${i}`, `${i}`);
  const w = t.store.watch({ key: b("p/"), range_end: b("p0"), start_revision: 3 });
  t.put("p/6", "6"); // arrives while the watcher is still replaying
  const all = drain(w);
  assert.ok(all[0]!.created);
  assert.equal(describe(all), ["PUT p/2=2@3", "PUT p/3=3@4", "PUT p/4=4@5", "PUT p/5=5@6", "PUT p/6=6@7"]);
  t.put("p/7", "7");
  assert.equal(describe(drain(w)), ["PUT p/7=7@8"]);
});

test("a watch with a future start revision waits for it", () => {
  const t = new TestStore();
  const w = t.store.watch({ key: b("k"), start_revision: 4 });
  drain(w);
  t.put("k", "2");
  t.put("k", "3");
  t.put("k", "4");
  assert.equal(describe(drain(w)), ["PUT k=4@4"]);
});

test("after a restore, a waiting watcher catches up from the restored history", async () => {
  const leader = new TestStore();
  const follower = new TestStore();
  leader.put("k", "1");
  follower.put("k", "1");
  const w = follower.store.watch({ key: b("k") });
  drain(w);
  const waiting = w.next();
  leader.put("k", "2");
  leader.put("other", "x");
  leader.put("k", "3");
  follower.store.restore(leader.store.snapshot());
  const first = await waiting;
  assert.equal(describe([first!, ...drain(w)]), ["PUT k=2@3", "PUT k=3@5"]);
  follower.store.apply({ type: "put", request: { key: b("k"), value: b("4") } }, follower.store.appliedIndex + 1);
  assert.equal(describe(drain(w)), ["PUT k=4@6"]);
});

test("a txn's events arrive in one message; NOPUT / NODELETE filter events", () => {
  const t = new TestStore();
  t.put("a", "0");
  const all = t.store.watch({ key: b("\0"), range_end: b("\0") });
  const noPut = t.store.watch({ key: b("\0"), range_end: b("\0"), filters: ["NOPUT"] });
  const noDelete = t.store.watch({ key: b("a"), filters: ["NODELETE"] });
  [all, noPut, noDelete].forEach(drain);
  t.run({
    type: "txn",
    request: { success: [putOp("x", "1"), putOp("y", "2"), { request_delete_range: { key: b("a") } }] },
  });
  const messages = drain(all);
  assert.is(messages.length, 1, "one revision = one message");
  assert.equal(describe(messages), ["PUT x=1@3", "PUT y=2@3", "DELETE a=@3"]);
  assert.equal(describe(drain(noPut)), ["DELETE a=@3"]);
  assert.equal(drain(noDelete), [], "a fully filtered revision sends nothing");
});

test("a watch starting at a compacted revision gets compact_revision and is cancelled", () => {
  const t = new TestStore();
  for (let i = 0; i < 5; i++) t.put("k", `${i}`);
  t.run({ type: "compaction", request: { revision: 4 } });
  const w = t.store.watch({ key: b("k"), start_revision: 2 });
  const responses = drain(w);
  const last = responses[responses.length - 1]!;
  assert.equal([last.canceled, last.compact_revision], [true, 4]);
  assert.ok(w.closed);
  const ok = t.store.watch({ key: b("k"), start_revision: 4 });
  assert.equal(describe(drain(ok)), ["PUT k=2@4", "PUT k=3@5", "PUT k=4@6"], "the compaction revision itself replays");
});

test("a slow watcher is cancelled with a reason once its backlog passes the limit; others continue", async () => {
  const t = new TestStore({ watch: { maxPendingEvents: 10 } });
  const slow = t.store.watch({ key: b("k") });
  const fast = t.store.watch({ key: b("k") });
  drain(slow);
  drain(fast);
  let fastCount = 0;
  for (let i = 0; i < 30; i++) {
    t.put("k", `${i}`);
    fastCount += drain(fast).length;
  }
  assert.is(fastCount, 30);
  const backlog = drain(slow);
  const last = backlog[backlog.length - 1]!;
  assert.ok(last.canceled);
  assert.match(last.cancel_reason, "watcher too slow");
  assert.match(last.cancel_reason, "resume from revision 2");
  assert.ok(slow.closed);
  assert.is(await slow.next(), null);
  assert.is(t.store.watcherCount, 1);
});

test("progress notifications go to idle progress_notify watchers only; requestProgress answers at once", () => {
  const t = new TestStore();
  const idle = t.store.watch({ key: b("a"), progress_notify: true });
  const busy = t.store.watch({ key: b("b"), progress_notify: true });
  const plain = t.store.watch({ key: b("c"), watch_id: 42 });
  assert.is(plain.id, 42);
  [idle, busy, plain].forEach(drain);
  t.put("b", "1");
  drain(busy);
  t.store.watchProgressTick();
  const progress = drain(idle);
  assert.equal([progress.length, progress[0]!.events.length, progress[0]!.header.revision], [1, 0, 2]);
  assert.is(drain(busy).length, 0);
  assert.is(drain(plain).length, 0);
  t.store.requestWatchProgress(42);
  assert.is(drain(plain)[0]!.header.revision, 2);
});

test("async iteration delivers responses as they come; cancel ends the stream", async () => {
  const t = new TestStore();
  const w = t.store.watch({ key: b("k") });
  const seen: string[] = [];
  const reader = (async () => {
    for await (const response of w) {
      for (const e of response.events) seen.push(s(e.kv.value));
      if (response.canceled) seen.push("canceled");
    }
  })();
  await new Promise((r) => setImmediate(r));
  t.put("k", "1");
  await new Promise((r) => setImmediate(r));
  t.put("k", "2");
  await new Promise((r) => setImmediate(r));
  w.cancel();
  await reader;
  assert.equal(seen, ["1", "2", "canceled"]);
  assert.is(t.store.watcherCount, 0);
});

test("1,000 watchers of one key all get the event", () => {
  const t = new TestStore();
  const watchers = Array.from({ length: 1000 }, () => t.store.watch({ key: b("hot") }));
  watchers.forEach(drain);
  t.put("hot", "v");
  for (const w of watchers) assert.equal(describe(drain(w)), ["PUT hot=v@2"]);
});

test.run();
