// THE etcd-compatibility suite: one body, run against a real etcd 3.4 (test/integration/api-etcd.test.ts) and
// against vigie (test/integration/api-vigie.test.ts). Every expectation below was first observed on etcd 3.4.23;
// the comments marked "etcd:" record behaviour that surprised us. Responses are compared FIELD BY FIELD after
// replacing the values that legitimately differ (cluster_id, member_id, raft_term: checked to be decimal strings).
// Revisions are relative to the store's revision when the suite starts, so the target need not be empty, but
// it must not be written by anyone else while the suite runs (the suite compacts it).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { call, type RawAnswer, rawCall, StreamSession } from "./api-client.js";

export interface ApiTarget {
  url: string;
  stop(): Promise<void>;
}

const b64 = (text: string) => Buffer.from(text).toString("base64");
const ID = "<id>";

/** Replaces the header's ids and term (checked to be decimal strings) so two servers compare equal. */
function normalize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalize);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (key === "header" && inner !== null && typeof inner === "object") {
      const header = { ...(inner as Record<string, unknown>) };
      for (const field of ["cluster_id", "member_id", "raft_term"]) {
        if (header[field] !== undefined) {
          assert.match(String(header[field]), /^\d+$/, `header.${field} is a decimal string`);
          header[field] = ID;
        }
      }
      out[key] = header;
    } else {
      out[key] = normalize(inner);
    }
  }
  return out;
}

/** A top-level header at `revision` (undefined: no revision field, like member list). */
function header(revision?: number): Record<string, unknown> {
  if (revision === undefined) return { cluster_id: ID, member_id: ID, raft_term: ID };
  return { cluster_id: ID, member_id: ID, revision: String(revision), raft_term: ID };
}

function expectOk(answer: RawAnswer, expected: Record<string, unknown>, what: string): void {
  assert.is(answer.status, 200, `${what}: HTTP status (body ${answer.text.slice(0, 300)})`);
  assert.equal(normalize(answer.json), expected, what);
}

function expectError(answer: RawAnswer, status: number, code: number, message: string, what: string): void {
  assert.equal({ status: answer.status, body: answer.json }, { status, body: { error: message, message, code } }, what);
}

function kv(key: string, value: string, create: number, mod: number, version: number, lease?: string) {
  const out: Record<string, unknown> = {
    key: b64(key),
    create_revision: String(create),
    mod_revision: String(mod),
    version: String(version),
  };
  if (value !== "") out.value = b64(value);
  if (lease !== undefined) out.lease = lease;
  return out;
}

export function defineApiSuite(name: string, start: () => Promise<ApiTarget | undefined>): void {
  const test = suite<{ target: ApiTarget | undefined }>(name, { target: undefined });
  const p = "/compat/";
  let url = "";
  let base = 0;
  const rev = (offset: number) => base + offset;
  /** Runs the body only when the target started (the vigie file skips, loudly, while the agent is missing). */
  const check = (title: string, body: () => Promise<void>) =>
    test(title, async (context) => {
      if (context.target === undefined) return;
      await body();
    });

  test.before(async (context) => {
    context.target = await start();
    if (context.target === undefined) return;
    url = context.target.url;
    const answer = await call(url, "/v3/kv/range", { key: b64("/none") });
    const revision = (answer.json?.header as { revision?: string } | undefined)?.revision;
    assert.match(String(revision), /^\d+$/, `the target answers a range: ${answer.text}`);
    base = Number(revision);
  });
  test.after(async (context) => {
    await context.target?.stop();
  });

  check("GET /health answers health true", async () => {
    const answer = await rawCall(url, "/health", undefined, "GET");
    assert.equal({ status: answer.status, body: answer.json }, { status: 200, body: { health: "true" } });
  });

  check("put and range: revisions, versions, prev_kv, proto3 defaults omitted", async () => {
    expectOk(await call(url, "/v3/kv/put", { key: b64(`${p}a`), value: b64("1") }), { header: header(rev(1)) }, "put");
    expectOk(
      await call(url, "/v3/kv/put", { key: b64(`${p}a`), value: b64("2"), prev_kv: true }),
      { header: header(rev(2)), prev_kv: kv(`${p}a`, "1", rev(1), rev(1), 1) },
      "put prev_kv",
    );
    // etcd: the lowerCamel spelling of every field is accepted too.
    expectOk(
      await call(url, "/v3/kv/put", { key: b64(`${p}b`), value: b64(""), prevKv: true }),
      { header: header(rev(3)) },
      "put of an empty value with prevKv on a new key: no prev_kv at all",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(`${p}a`) }),
      { header: header(rev(3)), kvs: [kv(`${p}a`, "2", rev(1), rev(2), 2)], count: "1" },
      "range one key",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(`${p}zz`) }),
      { header: header(rev(3)) },
      "range miss: no kvs, no count",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(p), range_end: b64("/compat0"), limit: "1" }),
      { header: header(rev(3)), kvs: [kv(`${p}a`, "2", rev(1), rev(2), 2)], more: true, count: "2" },
      "prefix range with limit",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(p), rangeEnd: b64("/compat0"), keysOnly: true, sortOrder: "DESCEND" }),
      {
        header: header(rev(3)),
        kvs: [kv(`${p}b`, "", rev(3), rev(3), 1), kv(`${p}a`, "", rev(1), rev(2), 2)],
        count: "2",
      },
      "keys_only, descending (by key: the default target)",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(p), range_end: b64("/compat0"), count_only: true }),
      { header: header(rev(3)), count: "2" },
      "count_only",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(`${p}a`), revision: String(rev(1)) }),
      { header: header(rev(3)), kvs: [kv(`${p}a`, "1", rev(1), rev(1), 1)], count: "1" },
      "range at a past revision (header still carries the current one)",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(`${p}a`), sort_order: 2, serializable: true, limit: 5 }),
      { header: header(rev(3)), kvs: [kv(`${p}a`, "2", rev(1), rev(2), 2)], count: "1" },
      "enums by number, int64 as JSON numbers, serializable",
    );
    expectError(
      await call(url, "/v3/kv/range", { key: b64(`${p}a`), revision: String(rev(100)) }),
      400,
      11,
      "etcdserver: mvcc: required revision is a future revision",
      "future revision",
    );
  });

  check("deleterange: deleted count, prev_kvs, misses leave the revision alone", async () => {
    expectOk(await call(url, "/v3/kv/deleterange", { key: b64(`${p}zz`) }), { header: header(rev(3)) }, "miss");
    expectOk(
      await call(url, "/v3/kv/deleterange", { key: b64(`${p}b`), prev_kv: true }),
      { header: header(rev(4)), deleted: "1", prev_kvs: [kv(`${p}b`, "", rev(3), rev(3), 1)] },
      "delete with prev_kv",
    );
    await call(url, "/v3/kv/put", { key: b64(`${p}d/1`), value: b64("x") }); // rev 5
    await call(url, "/v3/kv/put", { key: b64(`${p}d/2`), value: b64("y") }); // rev 6
    expectOk(
      await call(url, "/v3/kv/deleterange", { key: b64(`${p}d/`), range_end: b64(`${p}d0`) }),
      { header: header(rev(7)), deleted: "2" },
      "prefix delete: one revision for both keys",
    );
  });

  check("txn: success and failure branches, nested responses carry only a revision", async () => {
    // state: /compat/a = "2" (create rev+1, mod rev+2)
    expectOk(
      await call(url, "/v3/kv/txn", {
        compare: [{ key: b64(`${p}a`), result: "EQUAL", target: "VALUE", value: b64("2") }],
        success: [{ request_range: { key: b64(`${p}a`) } }, { request_put: { key: b64(`${p}t`), value: b64("t") } }],
        failure: [],
      }),
      {
        header: header(rev(8)),
        succeeded: true,
        responses: [
          {
            response_range: {
              header: { revision: String(rev(7)) },
              kvs: [kv(`${p}a`, "2", rev(1), rev(2), 2)],
              count: "1",
            },
          },
          { response_put: { header: { revision: String(rev(8)) } } },
        ],
      },
      "txn success",
    );
    expectOk(
      await call(url, "/v3/kv/txn", {
        compare: [{ key: b64(`${p}a`), result: "GREATER", target: "MOD", mod_revision: String(rev(50)) }],
        failure: [{ requestRange: { key: b64(`${p}t`) } }, { requestDeleteRange: { key: b64(`${p}zz`) } }],
      }),
      {
        header: header(rev(8)),
        responses: [
          {
            response_range: {
              header: { revision: String(rev(8)) },
              kvs: [kv(`${p}t`, "t", rev(8), rev(8), 1)],
              count: "1",
            },
          },
          { response_delete_range: { header: { revision: String(rev(8)) } } },
        ],
      },
      "txn failure: no `succeeded` field at all",
    );
    expectOk(await call(url, "/v3/kv/txn", {}), { header: header(rev(8)), succeeded: true }, "empty txn succeeds");
    expectError(
      await call(url, "/v3/kv/txn", {
        success: [{ request_put: { key: b64(`${p}t`) } }, { request_put: { key: b64(`${p}t`) } }],
      }),
      400,
      3,
      "etcdserver: duplicate key given in txn request",
      "duplicate put in one txn",
    );
    const ops = Array.from({ length: 129 }, (_, i) => ({ request_put: { key: b64(`${p}many/${i}`) } }));
    expectError(
      await call(url, "/v3/kv/txn", { success: ops }),
      400,
      3,
      "etcdserver: too many operations in txn request",
      "129 ops",
    );
  });

  check("bad input gets etcd's error bodies and the server keeps serving", async () => {
    const cases: Array<[string, string, number, number, string]> = [
      ["/v3/kv/range", "{}", 400, 3, "etcdserver: key is not provided"],
      ["/v3/kv/range", "", 400, 3, "etcdserver: key is not provided"], // etcd: an empty body is an empty request
      ["/v3/kv/put", `{"value":"${b64("v")}"}`, 400, 3, "etcdserver: key is not provided"],
      ["/v3/kv/deleterange", "null", 400, 3, "etcdserver: key is not provided"],
      ["/v3/kv/range", '{"key":"YQ==",', 400, 3, "unexpected EOF"],
      ["/v3/kv/range", '{"key":"!!!"}', 400, 3, "illegal base64 data at input byte 0"],
      ["/v3/kv/range", '{"key":"YQ"}', 400, 3, "illegal base64 data at input byte 0"], // etcd: padding is required
      ["/v3/kv/range", '{"key":5}', 400, 3, "json: cannot unmarshal number into Go value of type []uint8"],
      ["/v3/kv/range", '{"key":"YQ==","limit":"x"}', 400, 3, "invalid character 'x' looking for beginning of value"],
      [
        "/v3/kv/range",
        '{"key":"YQ==","limit":1.5}',
        400,
        3,
        "json: cannot unmarshal number 1.5 into Go value of type int64",
      ],
      [
        "/v3/kv/range",
        '{"key":"YQ==","serializable":"true"}',
        400,
        3,
        "json: cannot unmarshal string into Go value of type bool",
      ],
      [
        "/v3/kv/range",
        '{"key":"YQ==","sort_order":"BAD"}',
        400,
        3,
        'unknown value "BAD" for enum etcdserverpb.RangeRequest_SortOrder',
      ],
      ["/v3/kv/range", "[]", 400, 3, "json: cannot unmarshal array into Go value of type map[string]json.RawMessage"],
      [
        "/v3/kv/put",
        `{"key":"${b64(`${p}a`)}","value":"MQ==","ignore_value":true}`,
        400,
        3,
        "etcdserver: value is provided",
      ],
      ["/v3/kv/put", `{"key":"${b64(`${p}nokey`)}","ignore_value":true}`, 400, 3, "etcdserver: key not found"],
      [
        "/v3/kv/put",
        `{"key":"${b64(`${p}a`)}","lease":"5","ignore_lease":true}`,
        400,
        3,
        "etcdserver: lease is provided",
      ],
    ];
    for (const [path, body, status, code, message] of cases) {
      expectError(await rawCall(url, path, body), status, code, message, `${path} ${body}`);
    }
    // etcd: unknown fields are ignored and anything after the first JSON value is ignored too.
    const ignored = await rawCall(url, "/v3/kv/range", `{"key":"${b64(`${p}zz`)}","unknown":1} trailing`);
    expectOk(ignored, { header: header(rev(8)) }, "unknown field and trailing bytes ignored");
    const missing = await rawCall(url, "/v3/kv/nope", "{}");
    assert.is(missing.status, 404, "unknown path");
    const wrongMethod = await rawCall(url, "/v3/kv/range", undefined, "GET");
    assert.is(wrongMethod.status, 405, "GET on a POST-only path");
    // Request size: etcd refuses a request above 1.5 MiB (--max-request-bytes) with InvalidArgument, and one above
    // 2 MiB (the gRPC receive limit: 1.5 MiB + 512 KiB) already in the gateway with ResourceExhausted (HTTP 429).
    const tooLarge = await call(url, "/v3/kv/put", {
      key: b64(`${p}big`),
      value: Buffer.alloc(1600 * 1024).toString("base64"),
    });
    expectError(tooLarge, 400, 3, "etcdserver: request is too large", "put of 1.6 MiB");
    const huge = await call(url, "/v3/kv/put", {
      key: b64(`${p}big`),
      value: Buffer.alloc(2200 * 1024).toString("base64"),
    });
    assert.is(huge.status, 429, "put of 2.2 MiB: HTTP status");
    assert.is(huge.json?.code, 8);
    assert.match(String(huge.json?.message), /^grpc: received message larger than max \(\d+ vs\. 2097152\)$/);
    const fits = await call(url, "/v3/kv/put", {
      key: b64(`${p}big`),
      value: Buffer.alloc(1400 * 1024).toString("base64"),
    });
    expectOk(fits, { header: header(rev(9)) }, "put of 1.4 MiB is accepted");
    expectOk(
      await call(url, "/v3/kv/deleterange", { key: b64(`${p}big`) }),
      { header: header(rev(10)), deleted: "1" },
      "still serving",
    );
  });

  check("leases: grant, duplicate, attach, time-to-live, list, keepalive stream, revoke", async () => {
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

  check("watch: created, history with prev_kv, live PUT/DELETE, two watchers, cancel, progress", async () => {
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

  check("compaction: compacts, refuses twice and the future; compacted watches and ranges", async () => {
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

  check("member list and status", async () => {
    const list = await call(url, "/v3/cluster/member/list", {});
    assert.is(list.status, 200);
    const members = (list.json as { members: Array<Record<string, unknown>> }).members;
    assert.is(members.length, 1);
    const member = members[0]!;
    assert.equal(Object.keys(member), ["ID", "name", "peerURLs", "clientURLs"]);
    assert.match(String(member.ID), /^\d+$/);
    assert.ok(
      (member.clientURLs as string[]).includes(url),
      `clientURLs ${JSON.stringify(member.clientURLs)} has ${url}`,
    );
    assert.equal(
      normalize(list.json),
      { header: header(), members: [{ ...member }] },
      "member list header: no revision",
    );
    const status = await call(url, "/v3/maintenance/status", {});
    assert.is(status.status, 200);
    const body = status.json as Record<string, string>;
    // Sizes differ by nature (etcd: its bolt file, never 0; vigie: its latest snapshot, 0 before the first one,
    // and then omitted like any proto3 default), so only their form is compared.
    const keys = Object.keys(body).filter((key) => key !== "dbSize" && key !== "dbSizeInUse");
    assert.equal(keys, ["header", "version", "leader", "raftIndex", "raftTerm", "raftAppliedIndex"]);
    assert.is(body.dbSize === undefined, body.dbSizeInUse === undefined, "dbSize and dbSizeInUse come together");
    assert.is(body.leader, String(member.ID));
    assert.is((body.header as unknown as { member_id: string }).member_id, String(member.ID));
    assert.is(body.raftTerm, (body.header as unknown as { raft_term: string }).raft_term);
    for (const field of ["raftIndex", "raftAppliedIndex"]) assert.match(body[field]!, /^\d+$/);
    for (const field of ["dbSize", "dbSizeInUse"]) if (body[field] !== undefined) assert.match(body[field]!, /^\d+$/);
    assert.match(body.version!, /^\d+\.\d+\.\d+/);
    expectError(
      await call(url, "/v3/cluster/member/remove", { ID: "1" }),
      404,
      5,
      "etcdserver: member not found",
      "remove of an unknown member",
    );
    expectError(
      await call(url, "/v3/cluster/member/add", {}),
      400,
      3,
      "etcdserver: given member URLs are invalid",
      "add without peer URLs",
    );
    expectError(
      await call(url, "/v3/cluster/member/add", { peerURLs: ["bad"] }),
      400,
      3,
      "etcdserver: given member URLs are invalid",
      "add with a bad URL",
    );
  });

  check("txn: ops after a write see the new revision; a nested txn has an empty header", async () => {
    const now = await call(url, "/v3/kv/range", { key: b64("/none") });
    const before = Number((now.json?.header as { revision?: string } | undefined)?.revision);
    expectOk(
      await call(url, "/v3/kv/txn", {
        success: [
          { request_range: { key: b64(`${p}n`) } },
          { request_put: { key: b64(`${p}n`), value: b64("1") } },
          { request_range: { key: b64(`${p}n`) } },
          { request_txn: { success: [{ request_range: { key: b64(`${p}n`), count_only: true } }] } },
        ],
      }),
      {
        header: header(before + 1),
        succeeded: true,
        responses: [
          { response_range: { header: { revision: String(before) } } },
          { response_put: { header: { revision: String(before + 1) } } },
          {
            response_range: {
              header: { revision: String(before + 1) },
              kvs: [kv(`${p}n`, "1", before + 1, before + 1, 1)],
              count: "1",
            },
          },
          {
            response_txn: {
              header: {},
              succeeded: true,
              responses: [{ response_range: { header: { revision: String(before + 1) }, count: "1" } }],
            },
          },
        ],
      },
      "per-op revisions",
    );
  });

  check("watch ids: chosen by the client, or the stream's next free one; a duplicate is refused", async () => {
    const now = await call(url, "/v3/kv/range", { key: b64("/none") });
    const current = Number((now.json?.header as { revision?: string } | undefined)?.revision);
    const watch = new StreamSession(url, "/v3/watch");
    watch.send(
      [
        { create_request: { key: b64(`${p}i`), watch_id: "7" } },
        { create_request: { key: b64(`${p}i`), watch_id: "7" } },
        { create_request: { key: b64(`${p}i`) } },
        { create_request: { key: b64(`${p}i`), watch_id: "1" } },
        { create_request: { key: b64(`${p}i`) } },
      ]
        .map((message) => JSON.stringify(message))
        .join(""),
    );
    watch.finish();
    const messages: unknown[] = [];
    for (let i = 0; i < 5; i++) messages.push(normalize(await watch.next()));
    assert.equal(messages, [
      { result: { header: header(current), watch_id: "7", created: true } },
      {
        result: {
          header: header(current),
          watch_id: "-1",
          created: true,
          canceled: true,
          cancel_reason: "mvcc: duplicate watch ID provided on the WatchStream",
        },
      },
      { result: { header: header(current), created: true } },
      { result: { header: header(current), watch_id: "1", created: true } },
      { result: { header: header(current), watch_id: "2", created: true } },
    ]);
    watch.close();
  });

  check("watch from a future revision: nothing before it, then its events", async () => {
    const now = await call(url, "/v3/kv/range", { key: b64("/none") });
    const current = Number((now.json?.header as { revision?: string } | undefined)?.revision);
    const watch = new StreamSession(url, "/v3/watch");
    watch.send({ create_request: { key: b64(`${p}f`), start_revision: String(current + 2) } });
    watch.finish();
    assert.equal(normalize(await watch.next()), { result: { header: header(current), created: true } });
    await call(url, "/v3/kv/put", { key: b64(`${p}f`), value: b64("early") }); // current + 1: before the start
    await call(url, "/v3/kv/put", { key: b64(`${p}f`), value: b64("on time") }); // current + 2
    assert.equal(normalize(await watch.next()), {
      result: { header: header(current + 2), events: [{ kv: kv(`${p}f`, "on time", current + 1, current + 2, 2) }] },
    });
    watch.close();
  });

  check("range sorting and revision filters, ignore_value/ignore_lease, compare targets, NOPUT filter", async () => {
    const q = `${p}s/`;
    const now = await call(url, "/v3/kv/range", { key: b64("/none") });
    const c = Number((now.json?.header as { revision?: string } | undefined)?.revision);
    const end = b64(`${p}s0`);
    const watch = new StreamSession(url, "/v3/watch");
    watch.send({ create_request: { key: b64(q), range_end: end, filters: ["NOPUT"] } });
    watch.finish();
    assert.equal(normalize(await watch.next()), { result: { header: header(c), created: true } });
    await call(url, "/v3/kv/put", { key: b64(`${q}b`), value: b64("z") }); // c+1
    await call(url, "/v3/kv/put", { key: b64(`${q}a`), value: b64("y") }); // c+2
    await call(url, "/v3/kv/put", { key: b64(`${q}c`), value: b64("x") }); // c+3
    await call(url, "/v3/kv/put", { key: b64(`${q}b`), value: b64("w") }); // c+4
    const a = kv(`${q}a`, "y", c + 2, c + 2, 1);
    const b = kv(`${q}b`, "w", c + 1, c + 4, 2);
    const cc = kv(`${q}c`, "x", c + 3, c + 3, 1);
    const range = async (extra: Record<string, unknown>) =>
      normalize((await call(url, "/v3/kv/range", { key: b64(q), range_end: end, ...extra })).json);
    assert.equal(
      await range({ sort_target: "VALUE" }),
      { header: header(c + 4), kvs: [b, cc, a], count: "3" },
      "by value",
    );
    assert.equal(
      await range({ sort_target: "CREATE", sort_order: "DESCEND" }),
      { header: header(c + 4), kvs: [cc, a, b], count: "3" },
      "by create revision, descending",
    );
    assert.equal(
      await range({ sort_target: "VERSION", sort_order: "ASCEND" }),
      { header: header(c + 4), kvs: [a, cc, b], count: "3" },
      "by version",
    );
    // etcd: the revision filters apply after counting, so `count` still says 3.
    assert.equal(
      await range({ min_mod_revision: String(c + 3) }),
      { header: header(c + 4), kvs: [b, cc], count: "3" },
      "min_mod_revision",
    );
    assert.equal(
      await range({ min_mod_revision: String(c + 3), limit: "2" }),
      { header: header(c + 4), kvs: [b, cc], count: "3" },
      "`more` is decided on the filtered list: 2 kept, limit 2, so no `more` (though count is 3)",
    );
    assert.equal(
      await range({ max_create_revision: String(c + 1) }),
      { header: header(c + 4), kvs: [b], count: "3" },
      "max_create_revision",
    );
    expectOk(
      await call(url, "/v3/kv/put", { key: b64(`${q}a`), ignore_value: true, prev_kv: true }),
      { header: header(c + 5), prev_kv: a },
      "ignore_value keeps the value",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(`${q}a`) }),
      { header: header(c + 5), kvs: [kv(`${q}a`, "y", c + 2, c + 5, 2)], count: "1" },
      "value kept, version bumped",
    );
    const compare = async (target: Record<string, unknown>) =>
      normalize((await call(url, "/v3/kv/txn", { compare: [{ key: b64(`${q}b`), ...target }] })).json);
    assert.equal(await compare({ target: "VERSION", result: "EQUAL", version: "2" }), {
      header: header(c + 5),
      succeeded: true,
    });
    assert.equal(await compare({ target: "CREATE", result: "LESS", create_revision: String(c + 1) }), {
      header: header(c + 5),
    });
    assert.equal(await compare({ target: "LEASE", result: "EQUAL", lease: "0" }), {
      header: header(c + 5),
      succeeded: true,
    });
    assert.equal(await compare({ target: "VALUE", result: "NOT_EQUAL", value: b64("w") }), { header: header(c + 5) });
    assert.equal(
      normalize(
        (
          await call(url, "/v3/kv/txn", {
            compare: [{ key: b64(q), range_end: end, target: "MOD", result: "GREATER", mod_revision: String(c) }],
          })
        ).json,
      ),
      { header: header(c + 5), succeeded: true },
      "a compare over a range holds only if every key satisfies it",
    );
    expectOk(
      await call(url, "/v3/kv/deleterange", { key: b64(q), range_end: end }),
      { header: header(c + 6), deleted: "3" },
      "delete the range",
    );
    // Only the DELETE events reach the NOPUT watcher, all three in one message (one revision).
    assert.equal(normalize(await watch.next()), {
      result: {
        header: header(c + 6),
        events: ["a", "b", "c"].map((name) => ({
          type: "DELETE",
          kv: { key: b64(`${q}${name}`), mod_revision: String(c + 6) },
        })),
      },
    });
    watch.close();
  });

  test.run();
}
