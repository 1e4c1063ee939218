// Compatibility suite, part 5: which error etcd answers when a request breaks several rules, int64 values given
// as strings, lease ids beyond 2^53, the range filters' non-positive values, a txn's op limit for nested txns, and
// the txn that puts a key and deletes it again in one revision (see api-suite.ts). Each case was found by the
// differential test (test/integration/differential-kv.test.ts) and confirmed by hand on etcd 3.4.23. This section
// compacts the store, so it runs last.
import * as assert from "uvu/assert";
import { call, rawCall, StreamSession } from "./api-client.js";
import { b64, expectError, expectOk, header, kv, normalize, type SuiteContext } from "./api-expect.js";

async function currentRevision(url: string): Promise<number> {
  const now = await call(url, "/v3/kv/range", { key: b64("/none") });
  return Number((now.json?.header as { revision?: string } | undefined)?.revision);
}

/**
 * A delete with range_end "\0" removes everything from its key on: this key sorts after every key the suite
 * writes (the 0xff keys of the edge checks are deleted by then), so deleting "to the end" from it touches nothing else.
 */
const lastKeyBytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("compat-order")]);
const lastKey = lastKeyBytes.toString("base64");

function lastKv(value: string, create: number, mod: number, version: number): Record<string, unknown> {
  const out = kv("", value, create, mod, version);
  out.key = lastKey;
  return out;
}

const MAP_ERROR = (kind: string) => `json: cannot unmarshal ${kind} into Go value of type map[string]json.RawMessage`;

const LEASE_NOT_FOUND = "etcdserver: requested lease not found";

export function defineCheckOrderChecks({ check, p }: SuiteContext): void {
  const q = `${p}order/`;

  check("a put breaking two rules: its lease is checked first alone, its key first inside a txn", async (url) => {
    const put = { key: b64(`${q}missing`), lease: "424242", ignore_value: true };
    // etcd: a plain put looks the lease up before it reads the previous key ...
    expectError(await call(url, "/v3/kv/put", put), 404, 5, LEASE_NOT_FOUND, "plain put");
    // ... a put in a txn (checkRequestPut) reads the previous key first.
    expectError(
      await call(url, "/v3/kv/txn", { success: [{ request_put: put }] }),
      400,
      3,
      "etcdserver: key not found",
      "the same put in a txn",
    );
    // etcd checks every put of the chosen branches (nested too) before any range: a bad put wins wherever it is.
    const c = await currentRevision(url);
    expectError(
      await call(url, "/v3/kv/txn", {
        success: [
          { request_range: { key: b64(`${q}k`), revision: String(c + 100) } },
          { request_txn: { success: [{ request_put: { key: b64(`${q}k`), lease: "424242" } }] } },
        ],
      }),
      404,
      5,
      LEASE_NOT_FOUND,
      "a future-revision range before a put with an unknown lease",
    );
  });

  check("txn request checks: an empty op is 'key not found', after the whole body parsed", async (url) => {
    expectError(await call(url, "/v3/kv/txn", { success: [{}] }), 400, 3, "etcdserver: key not found", "empty op");
    expectError(
      await rawCall(url, "/v3/kv/txn", '{"success":[{}],"failure":[{"request_range":{"key":"!!"}}]}'),
      400,
      3,
      "illegal base64 data at input byte 0",
      "a JSON error later in the body wins over the empty op",
    );
    // etcd: a nested txn may hold only what its parent's op count (max of compares, success, failure) leaves of
    // the 128-op limit: 100 compares leave 28.
    const compare = Array.from({ length: 100 }, () => ({ key: b64(`${q}none`), target: "VERSION", version: "0" }));
    const puts = (n: number) => Array.from({ length: n }, (_, i) => ({ request_put: { key: b64(`${q}n/${i}`) } }));
    expectError(
      await call(url, "/v3/kv/txn", { compare, success: [{ request_txn: { success: puts(29) } }] }),
      400,
      3,
      "etcdserver: too many operations in txn request",
      "29 ops nested under 100 compares",
    );
    const c = await currentRevision(url);
    const fits = await call(url, "/v3/kv/txn", { compare, success: [{ request_txn: { success: puts(28) } }] });
    expectOk(
      { ...fits, json: { header: fits.json?.header, succeeded: fits.json?.succeeded } },
      { header: header(c + 1), succeeded: true },
      "28 ops nested under 100 compares",
    );
    expectOk(
      await call(url, "/v3/kv/deleterange", { key: b64(`${q}n/`), range_end: b64(`${q}n0`) }),
      { header: header(c + 2), deleted: "28" },
      "the 28 keys were written",
    );
  });

  check("an int64 in a string is read as Go reads the text inside the quotes as a JSON document", async (url) => {
    const c = await currentRevision(url);
    const range = (limit: string) => rawCall(url, "/v3/kv/range", `{"key":"${b64(`${q}none`)}","limit":${limit}}`);
    for (const spaced of ['" 1 "', '"null"', '"-0"']) {
      expectOk(await range(spaced), { header: header(c) }, `limit ${spaced}`);
    }
    const refused: Array<[string, string]> = [
      ['""', "unexpected end of JSON input"],
      ['"  "', "unexpected end of JSON input"],
      ['"05"', "invalid character '5' after top-level value"],
      ['"1 2"', "invalid character '2' after top-level value"],
      ['"-"', "invalid character ' ' in numeric literal"],
      ['"1e2"', "json: cannot unmarshal number 1e2 into Go value of type int64"],
      ['"1.0"', "json: cannot unmarshal number 1.0 into Go value of type int64"],
      ['"true"', "json: cannot unmarshal bool into Go value of type int64"],
      ['"[1]"', "json: cannot unmarshal array into Go value of type int64"],
      ['"\\"1\\""', "invalid character '\\\\' looking for beginning of value"],
      // An escaped tab reaches Go as backslash + 't': not whitespace.
      ['"\\t1"', "invalid character '\\\\' looking for beginning of value"],
    ];
    for (const [limit, message] of refused) expectError(await range(limit), 400, 3, message, `limit ${limit}`);
    expectError(
      await rawCall(url, "/v3/kv/range", "{\\}"),
      400,
      3,
      "invalid character '\\\\' looking for beginning of object key string",
      "a backslash is quoted as Go quotes it",
    );
  });

  check("an int64 given as a JSON number is read from its text; bytes may be a JSON array of numbers", async (url) => {
    const c = await currentRevision(url);
    const none = b64(`${q}none`);
    const range = (extra: string) => rawCall(url, "/v3/kv/range", `{"key":"${none}"${extra}}`);
    expectOk(await range(',"limit":-0'), { header: header(c) }, "limit -0");
    expectOk(await range(',"limit":9223372036854775807'), { header: header(c) }, "limit 2^63-1 as a number");
    const refused: Array<[string, string]> = [
      [',"limit":1e2', "json: cannot unmarshal number 1e2 into Go value of type int64"],
      [',"limit":1.0', "json: cannot unmarshal number 1.0 into Go value of type int64"],
      [',"limit":9223372036854775808', "json: cannot unmarshal number 9223372036854775808 into Go value of type int64"],
      [',"range_end":1e2', "json: cannot unmarshal number into Go value of type []uint8"],
      [
        ',"sort_order":1.0',
        "json: cannot unmarshal number 1.0 into Go value of type etcdserverpb.RangeRequest_SortOrder",
      ],
      [',"serializable":1.0', "json: cannot unmarshal number into Go value of type bool"],
      [',"range_end":[256]', "json: cannot unmarshal number 256 into Go value of type uint8"],
      [',"range_end":[1e2]', "json: cannot unmarshal number 1e2 into Go value of type uint8"],
      [',"range_end":[97,"x",300]', "json: cannot unmarshal string into Go value of type uint8"],
      [',"range_end":[{}]', "json: cannot unmarshal object into Go value of type uint8"],
    ];
    for (const [extra, message] of refused) expectError(await range(extra), 400, 3, message, extra);
    expectError(await rawCall(url, "/v3/kv/range", "1e2"), 400, 3, MAP_ERROR("number"), "a number body");
    // etcd: Go decodes a JSON array of numbers into []byte, one byte each; null is a zero byte.
    const bytes = [...Buffer.from(`${q}arr`)];
    expectOk(
      await rawCall(url, "/v3/kv/put", `{"key":${JSON.stringify(bytes)},"value":[0,null,255]}`),
      { header: header(c + 1) },
      "put with an array key and value",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key: b64(`${q}arr`) }),
      {
        header: header(c + 1),
        kvs: [{ ...kv(`${q}arr`, "", c + 1, c + 1, 1), value: Buffer.from([0, 0, 255]).toString("base64") }],
        count: "1",
      },
      "the array key holds the array value",
    );
    expectError(await rawCall(url, "/v3/kv/range", '{"key":[]}'), 400, 3, "etcdserver: key is not provided", "[]");
  });

  check("a field given in both spellings: the lowerCamel one wins, even when it is null", async (url) => {
    const c = await currentRevision(url);
    const key = b64(`${q}both`);
    await call(url, "/v3/kv/put", { key, value: b64("1") }); // c+1
    const put = (flags: string) => rawCall(url, "/v3/kv/put", `{"key":"${key}","value":"${b64("2")}",${flags}}`);
    expectOk(await put('"prev_kv":true,"prevKv":false'), { header: header(c + 2) }, "prevKv false wins");
    expectOk(await put('"prevKv":null,"prev_kv":true'), { header: header(c + 3) }, "prevKv null wins");
    expectOk(
      await put('"prev_kv":false,"prevKv":true'),
      { header: header(c + 4), prev_kv: kv(`${q}both`, "2", c + 1, c + 3, 3) },
      "prevKv true wins",
    );
  });

  check("a lease granted with an id beyond 2^53 gets exactly that id or an error, never another id", async (url) => {
    const asked = "9223372036854775807";
    const answer = await call(url, "/v3/lease/grant", { TTL: "60", ID: asked });
    if (answer.status === 200) {
      // etcd: any int64 id.
      assert.is(answer.json?.ID, asked, answer.text);
      expectOk(
        await call(url, "/v3/lease/revoke", { ID: asked }),
        { header: header(await currentRevision(url)) },
        "revoke",
      );
    } else {
      // vigie: ids stop at 2^53-1 (JSON clients read larger ones inexactly).
      assert.is(answer.status, 400, answer.text);
      assert.match(String(answer.json?.message), /^etcdserver: invalid lease ID 9223372036854775807/);
    }
  });

  check("range filters apply whenever non-zero: a negative max_* keeps nothing, a negative min_* all", async (url) => {
    const c = await currentRevision(url);
    await call(url, "/v3/kv/put", { key: b64(`${q}f`), value: b64("1") }); // c+1
    const range = { key: b64(`${q}f`), range_end: b64(`${q}g`) };
    expectOk(
      await call(url, "/v3/kv/range", { ...range, max_mod_revision: "-1" }),
      { header: header(c + 1), count: "1" },
      "max_mod_revision -1",
    );
    expectOk(
      await call(url, "/v3/kv/range", { ...range, max_create_revision: -1 }),
      { header: header(c + 1), count: "1" },
      "max_create_revision -1",
    );
    expectOk(
      await call(url, "/v3/kv/range", { ...range, min_mod_revision: "-1", min_create_revision: "-3" }),
      { header: header(c + 1), kvs: [kv(`${q}f`, "1", c + 1, c + 1, 1)], count: "1" },
      "negative minimums",
    );
  });

  check("a txn may put a key and delete it with range_end \\0 in one revision (and the reverse)", async (url) => {
    const c = await currentRevision(url);
    const key = lastKey;
    // etcd's duplicate-key check takes range_end "\0" literally (an empty interval), so these pass it.
    expectOk(
      await call(url, "/v3/kv/txn", {
        success: [
          { request_put: { key, value: b64("v") } },
          { request_delete_range: { key, range_end: b64("\0"), prev_kv: true } },
          { request_range: { key } },
        ],
      }),
      {
        header: header(c + 1),
        succeeded: true,
        responses: [
          { response_put: { header: { revision: String(c + 1) } } },
          {
            response_delete_range: {
              header: { revision: String(c + 1) },
              deleted: "1",
              prev_kvs: [lastKv("v", c + 1, c + 1, 1)],
            },
          },
          { response_range: { header: { revision: String(c + 1) } } },
        ],
      },
      "put, then delete to the end",
    );
    expectOk(await call(url, "/v3/kv/range", { key }), { header: header(c + 1) }, "the key is gone");
    await call(url, "/v3/kv/put", { key, value: b64("old") }); // c+2
    expectOk(
      await call(url, "/v3/kv/txn", {
        success: [{ request_delete_range: { key, range_end: b64("\0") } }, { request_put: { key, value: b64("new") } }],
      }),
      {
        header: header(c + 3),
        succeeded: true,
        responses: [
          { response_delete_range: { header: { revision: String(c + 3) }, deleted: "1" } },
          { response_put: { header: { revision: String(c + 3) } } },
        ],
      },
      "delete to the end, then put",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key }),
      { header: header(c + 3), kvs: [lastKv("new", c + 3, c + 3, 1)], count: "1" },
      "a new key: created at that revision, version 1",
    );
    // Compacting exactly there keeps the store readable.
    expectOk(
      await call(url, "/v3/kv/compaction", { revision: String(c + 3), physical: true }),
      { header: header(c + 3) },
      "compact",
    );
    expectOk(
      await call(url, "/v3/kv/range", { key, revision: String(c + 3) }),
      { header: header(c + 3), kvs: [lastKv("new", c + 3, c + 3, 1)], count: "1" },
      "read at the compacted revision",
    );
  });

  check(
    "a txn's range: revision -1 is 'compacted' once the store was compacted; a plain range reads now",
    async (url) => {
      const c = await currentRevision(url);
      await call(url, "/v3/kv/put", { key: lastKey, value: b64("newer") }); // c+1 (created at c)
      expectOk(await call(url, "/v3/kv/compaction", { revision: String(c + 1) }), { header: header(c + 1) }, "compact");
      expectOk(
        await call(url, "/v3/kv/range", { key: lastKey, revision: "-1" }),
        { header: header(c + 1), kvs: [lastKv("newer", c, c + 1, 2)], count: "1" },
        "plain range at -1: the current revision",
      );
      expectError(
        await call(url, "/v3/kv/txn", { success: [{ request_range: { key: lastKey, revision: "-1" } }] }),
        400,
        11,
        "etcdserver: mvcc: required revision has been compacted",
        "the same range in a txn",
      );
    },
  );

  check("watch prev_kv: a key deleted and created again in one txn; the creation has none", async (url) => {
    const key = Buffer.concat([lastKeyBytes, Buffer.from("-w")]).toString("base64");
    const c = await currentRevision(url);
    await call(url, "/v3/kv/put", { key, value: b64("old") }); // c+1
    const watch = new StreamSession(url, "/v3/watch");
    watch.send({ create_request: { key, start_revision: String(c + 2), prev_kv: true } });
    watch.finish();
    assert.equal(normalize(await watch.next()), { result: { header: header(c + 1), created: true } });
    const old = { key, create_revision: String(c + 1), mod_revision: String(c + 1), version: "1", value: b64("old") };
    await call(url, "/v3/kv/txn", {
      success: [{ request_delete_range: { key, range_end: b64("\0") } }, { request_put: { key, value: b64("new") } }],
    }); // c+2
    assert.equal(normalize(await watch.next()), {
      result: {
        header: header(c + 2),
        events: [
          { type: "DELETE", kv: { key, mod_revision: String(c + 2) }, prev_kv: old },
          // etcd: a creation (create_revision == mod_revision) never carries prev_kv.
          { kv: { key, create_revision: String(c + 2), mod_revision: String(c + 2), version: "1", value: b64("new") } },
        ],
      },
    });
    watch.close();
  });

  check("lease list: soonest expiry first", async (url) => {
    const grants: Array<[string, string]> = [
      ["8301", "300"],
      ["8901", "5"],
      ["8601", "100"],
    ];
    for (const [ID, TTL] of grants) await call(url, "/v3/lease/grant", { ID, TTL });
    const list = await call(url, "/v3/lease/leases", {});
    const ours = ((list.json?.leases as Array<{ ID: string }> | undefined) ?? [])
      .map((lease) => lease.ID)
      .filter((id) => grants.some(([ID]) => ID === id));
    assert.equal(ours, ["8901", "8601", "8301"], list.text);
    for (const [ID] of grants) await call(url, "/v3/lease/revoke", { ID });
  });
}
