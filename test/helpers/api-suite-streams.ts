// Compatibility suite, part 2: leases with the keepalive stream, watch streams, compaction (see api-suite.ts).
import * as assert from "uvu/assert";
import { call, StreamSession } from "./api-client.js";
import { b64, expectError, expectOk, header, kv, normalize, type SuiteContext } from "./api-expect.js";

export function defineStreamChecks({ check, rev, p }: SuiteContext): void {
  check("leases: grant, duplicate, attach, time-to-live, list, keepalive stream, revoke", async (url) => {
    const id = "7001";
    expectOk(
      await call(url, "/v3/lease/grant", { TTL: "60", ID: id }),
      { header: header(rev(10)), ID: id, TTL: "60" },
      "grant",
    );
    expectError(
      await call(url, "/v3/lease/grant", { TTL: "60", ID: id }),
      412,
      9,
      "etcdserver: lease already exists",
      "grant of an existing id",
    );
    expectError(
      await call(url, "/v3/lease/grant", { TTL: "9000000001" }),
      400,
      11,
      "etcdserver: too large lease TTL",
      "TTL above 9e9 s",
    );
    expectOk(
      await call(url, "/v3/kv/put", { key: b64(`${p}l`), value: b64("v"), lease: id }),
      { header: header(rev(11)) },
      "put with lease",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(`${p}l`) }),
      { header: header(rev(11)), kvs: [kv(`${p}l`, "v", rev(11), rev(11), 1, id)], count: "1" },
      "the key carries its lease",
    );
    expectError(
      await call(url, "/v3/kv/put", { key: b64(`${p}l2`), value: b64("v"), lease: "7999" }),
      404,
      5,
      "etcdserver: requested lease not found",
      "put with an unknown lease",
    );
    const ttl = await call(url, "/v3/lease/timetolive", { ID: id, keys: true });
    assert.is(ttl.status, 200);
    const remaining = Number((ttl.json as { TTL: string }).TTL);
    assert.ok(remaining >= 58 && remaining <= 60, `remaining TTL ${remaining}`);
    expectOk(
      ttl,
      { header: header(rev(11)), ID: id, TTL: String(remaining), grantedTTL: "60", keys: [b64(`${p}l`)] },
      "timetolive with keys",
    );
    // etcd: a missing lease is not an error here: TTL -1 and nothing else.
    expectOk(
      await call(url, "/v3/lease/timetolive", { ID: "7999" }),
      { header: header(rev(11)), ID: "7999", TTL: "-1" },
      "ttl of none",
    );
    const leases = await call(url, "/v3/lease/leases", {});
    assert.ok(
      ((leases.json as { leases: Array<{ ID: string }> }).leases ?? []).some((lease) => lease.ID === id),
      `leases lists ${id}: ${leases.text}`,
    );

    // keepalive streams one result per request and ends when the request body ends.
    // etcd: over HTTP/1.1 its gateway answers a streamed message only once more bytes (or the end of the body)
    // arrive, so the suite sends a stream's requests together and ends the body; replies still come one by one.
    const keepalive = new StreamSession(url, "/v3/lease/keepalive");
    keepalive.send(`${JSON.stringify({ ID: id })}\n${JSON.stringify({ ID: id })}\n${JSON.stringify({ ID: "7999" })}`);
    keepalive.finish();
    assert.equal(normalize(await keepalive.next()), { result: { header: header(rev(11)), ID: id, TTL: "60" } });
    assert.equal(normalize(await keepalive.next()), { result: { header: header(rev(11)), ID: id, TTL: "60" } });
    // etcd: keepalive of an unknown lease answers TTL 0 (omitted), not an error.
    assert.equal(normalize(await keepalive.next()), { result: { header: header(rev(11)), ID: "7999" } });
    assert.is(await keepalive.nextLine(), undefined, "stream ends after the client's last message");
    assert.is(keepalive.status, 200);

    expectOk(await call(url, "/v3/lease/revoke", { ID: id }), { header: header(rev(12)) }, "revoke deletes its keys");
    expectOk(await call(url, "/v3/kv/range", { key: b64(`${p}l`) }), { header: header(rev(12)) }, "leased key gone");
    expectError(
      await call(url, "/v3/lease/revoke", { ID: id }),
      404,
      5,
      "etcdserver: requested lease not found",
      "revoke twice",
    );
    // etcd: a TTL below its minimum (1.5 election timeouts, rounded up: 2 s with defaults) is raised to it.
    expectOk(
      await call(url, "/v3/lease/grant", { TTL: "1", ID: "7002" }),
      { header: header(rev(12)), ID: "7002", TTL: "2" },
      "TTL raised to the minimum",
    );
    expectOk(await call(url, "/v3/lease/revoke", { ID: "7002" }), { header: header(rev(12)) }, "revoke without keys");
    const random = await call(url, "/v3/lease/grant", { TTL: "30" });
    assert.match(String(random.json?.ID), /^\d+$/, "a server-chosen id");
    await call(url, "/v3/lease/revoke", { ID: random.json?.ID });
  });

  check("watch: created, history with prev_kv, live PUT/DELETE, two watchers, cancel, progress", async (url) => {
    // history since rev(1): put a=1 (1), put a=2 (2)
    // The watch stream stays open after the request body ends (etcd: see the keepalive note on why the suite
    // sends a stream's requests together).
    const watch = new StreamSession(url, "/v3/watch");
    watch.send(
      [
        { create_request: { key: b64(`${p}a`), start_revision: String(rev(1)), prev_kv: true } },
        { createRequest: { key: b64(`${p}w/`), rangeEnd: b64(`${p}w0`) } },
      ]
        .map((message) => JSON.stringify(message))
        .join("\n"),
    );
    watch.finish();
    // etcd: watch ids are per stream and start at 0, so the first watcher's messages have no watch_id.
    const first: unknown[] = [];
    for (let i = 0; i < 3; i++) first.push(normalize(await watch.next()));
    const created0 = { result: { header: header(rev(12)), created: true } };
    const history0 = {
      result: {
        header: header(rev(12)),
        events: [
          { kv: kv(`${p}a`, "1", rev(1), rev(1), 1) },
          { kv: kv(`${p}a`, "2", rev(1), rev(2), 2), prev_kv: kv(`${p}a`, "1", rev(1), rev(1), 1) },
        ],
      },
    };
    const created1 = { result: { header: header(rev(12)), watch_id: "1", created: true } };
    // The history batch and the second watcher's creation are independent: either order is valid.
    assert.equal(first[0], created0, "created");
    assert.equal(
      first.slice(1).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [created1, history0].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      "history (PUT type omitted, prev_kv only where there was one) and the second watcher's creation",
    );
    await call(url, "/v3/kv/put", { key: b64(`${p}w/x`), value: b64("1") }); // rev 13
    assert.equal(normalize(await watch.next()), {
      result: { header: header(rev(13)), watch_id: "1", events: [{ kv: kv(`${p}w/x`, "1", rev(13), rev(13), 1) }] },
    });
    await call(url, "/v3/kv/deleterange", { key: b64(`${p}a`) }); // rev 14
    assert.equal(
      normalize(await watch.next()),
      {
        result: {
          header: header(rev(14)),
          events: [
            {
              type: "DELETE",
              kv: { key: b64(`${p}a`), mod_revision: String(rev(14)) },
              prev_kv: kv(`${p}a`, "2", rev(1), rev(2), 2),
            },
          ],
        },
      },
      "DELETE event: kv has only key and mod_revision",
    );
    watch.close();

    const cancel = new StreamSession(url, "/v3/watch");
    cancel.send(
      [{ create_request: { key: b64(`${p}w/`), range_end: b64(`${p}w0`) } }, { cancel_request: { watch_id: "0" } }]
        .map((message) => JSON.stringify(message))
        .join("\n"),
    );
    cancel.finish();
    assert.equal(normalize(await cancel.next()), { result: { header: header(rev(14)), created: true } });
    assert.equal(normalize(await cancel.next()), { result: { header: header(rev(14)), canceled: true } });
    await call(url, "/v3/kv/put", { key: b64(`${p}w/y`), value: b64("1") }); // rev 15: cancelled watcher, nothing
    assert.is(await cancel.quiet(300), undefined, "no message for a cancelled watcher");
    cancel.close();

    // etcd 3.4: a progress_request is answered with watch_id -1 and the current revision.
    const progress = new StreamSession(url, "/v3/watch");
    progress.send('{"create_request":{"key":"YQ=="}}{"progress_request":{}}');
    progress.finish();
    assert.equal(normalize(await progress.next()), { result: { header: header(rev(15)), created: true } });
    assert.equal(normalize(await progress.next()), { result: { header: header(rev(15)), watch_id: "-1" } });
    progress.close();

    // A bad first message: HTTP 500 with a code-2 body (etcd: the stream error path, not InvalidArgument).
    const bad = new StreamSession(url, "/v3/watch");
    bad.send('{"create_request":{"key":"!!"}}');
    bad.finish();
    const badLine = await bad.nextLine();
    assert.equal(
      { status: bad.status, body: JSON.parse(badLine ?? "null") },
      {
        status: 500,
        body: { error: "illegal base64 data at input byte 0", message: "illegal base64 data at input byte 0", code: 2 },
      },
    );
  });

  check("compaction: compacts, refuses twice and the future; compacted watches and ranges", async (url) => {
    expectOk(
      await call(url, "/v3/kv/compaction", { revision: String(rev(3)) }),
      { header: header(rev(15)) },
      "compact",
    );
    expectError(
      await call(url, "/v3/kv/compaction", { revision: String(rev(3)) }),
      400,
      11,
      "etcdserver: mvcc: required revision has been compacted",
      "compact again",
    );
    expectError(
      await call(url, "/v3/kv/compaction", { revision: String(rev(1000)) }),
      400,
      11,
      "etcdserver: mvcc: required revision is a future revision",
      "compact the future",
    );
    expectError(
      await call(url, "/v3/kv/range", { key: b64(`${p}a`), revision: String(rev(2)) }),
      400,
      11,
      "etcdserver: mvcc: required revision has been compacted",
      "range below the compaction",
    );
    const watch = new StreamSession(url, "/v3/watch");
    watch.send({ create_request: { key: b64(`${p}a`), start_revision: String(rev(1)) } });
    watch.finish();
    assert.equal(normalize(await watch.next()), { result: { header: header(rev(15)), created: true } });
    // etcd: the cancel message's header has NO revision.
    assert.equal(normalize(await watch.next()), {
      result: { header: header(), canceled: true, compact_revision: String(rev(3)) },
    });
    watch.close();
  });
}
