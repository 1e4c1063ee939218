// Compatibility suite, part 1: health, put/range/delete/txn and bad input (see api-suite.ts).
import * as assert from "uvu/assert";
import { call, rawCall } from "./api-client.js";
import { b64, expectError, expectOk, header, kv, type SuiteContext } from "./api-expect.js";

export function defineKvChecks({ check, rev, p }: SuiteContext): void {
  check("GET /health answers health true", async (url) => {
    const answer = await rawCall(url, "/health", undefined, "GET");
    assert.equal({ status: answer.status, body: answer.json }, { status: 200, body: { health: "true" } });
  });

  check("/health and /metrics: etcd's content types, headers and methods", async (url) => {
    const health = await rawCall(url, "/health", undefined, "GET");
    // etcd writes the JSON without a content type and Go sniffs it as plain text.
    assert.is(health.contentType, "text/plain; charset=utf-8", "health content type");
    assert.is(health.headers.get("access-control-allow-origin"), "*", "health CORS header");
    for (const method of ["POST", "DELETE"]) {
      const refused = await rawCall(url, "/health", undefined, method);
      assert.equal(
        {
          status: refused.status,
          allow: refused.headers.get("allow"),
          nosniff: refused.headers.get("x-content-type-options"),
          text: refused.text,
        },
        { status: 405, allow: "GET", nosniff: "nosniff", text: "Method Not Allowed\n" },
        `${method} /health`,
      );
    }
    // Prometheus' handler answers every method.
    const metrics = await rawCall(url, "/metrics", undefined, "POST");
    assert.is(metrics.status, 200, "POST /metrics");
    assert.is(metrics.contentType, "text/plain; version=0.0.4; charset=utf-8", "metrics content type");
    assert.is(metrics.headers.get("access-control-allow-origin"), "*", "metrics CORS header");
  });

  check("put and range: revisions, versions, prev_kv, proto3 defaults omitted", async (url) => {
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

  check("deleterange: deleted count, prev_kvs, misses leave the revision alone", async (url) => {
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

  check("txn: success and failure branches, nested responses carry only a revision", async (url) => {
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

  check("bad input gets etcd's error bodies and the server keeps serving", async (url) => {
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
    assert.equal([missing.status, missing.text], [404, "Not Found\n"], "unknown path under /v3/: the gateway's page");
    const elsewhere = await rawCall(url, "/nope", undefined, "GET");
    assert.equal([elsewhere.status, elsewhere.text], [404, "404 page not found\n"], "unknown path: Go's mux page");
    const wrongMethod = await rawCall(url, "/v3/kv/range", undefined, "GET");
    assert.is(wrongMethod.status, 405, "GET on a POST-only path");
    // etcd: its gateway writes these two pages with Go's http.Error, and passes its gRPC backend's content type on
    // with a unary answer that succeeded.
    for (const [what, answer] of [
      ["404", missing],
      ["405", wrongMethod],
    ] as const) {
      assert.is(answer.contentType, "text/plain; charset=utf-8", `${what} content type`);
      assert.is(answer.headers.get("x-content-type-options"), "nosniff", `${what} nosniff`);
      assert.is(answer.headers.get("access-control-allow-origin"), "*", `${what} CORS`);
    }
    assert.is(ignored.headers.get("grpc-metadata-content-type"), "application/grpc", "a unary 200's gRPC metadata");
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
}
