// Compatibility suite, part 3: members and status, txn per-op revisions, watch ids and start revisions, range
// sorting and filters, compare targets (see api-suite.ts).
import * as assert from "uvu/assert";
import { call, StreamSession } from "./api-client.js";
import { b64, expectError, expectOk, header, kv, normalize, type SuiteContext } from "./api-expect.js";

export function defineMoreChecks({ check, p }: SuiteContext): void {
  check("member list and status", async (url) => {
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

  check("member update: new peer URLs, an unknown member, a URL another member has", async (url) => {
    const list = await call(url, "/v3/cluster/member/list", {});
    const self = (list.json as { members: Array<Record<string, unknown>> }).members[0]!;
    const ownUrls = self.peerURLs as string[];
    // A port nobody listens on: with one member, nothing needs to reach it there.
    const moved = "http://127.0.0.1:1";
    expectOk(
      await call(url, "/v3/cluster/member/update", { ID: self.ID, peerURLs: [moved] }),
      { header: header(), members: [{ ...self, peerURLs: [moved] }] },
      "update answers with the member list, its header without revision",
    );
    const listed = await call(url, "/v3/cluster/member/list", {});
    assert.equal((listed.json as { members: Array<{ peerURLs: string[] }> }).members[0]!.peerURLs, [moved]);
    expectError(
      await call(url, "/v3/cluster/member/update", { ID: "1", peerURLs: ["http://127.0.0.1:2"] }),
      404,
      5,
      "etcdserver: member not found",
      "update of an unknown member",
    );
    const learnerUrl = "http://127.0.0.1:3";
    const added = await call(url, "/v3/cluster/member/add", { peerURLs: [learnerUrl], isLearner: true });
    assert.is(added.status, 200, added.text);
    const learnerId = (added.json as { member: { ID: string } }).member.ID;
    expectError(
      await call(url, "/v3/cluster/member/update", { ID: self.ID, peerURLs: [learnerUrl] }),
      412,
      9,
      "etcdserver: Peer URLs already exists",
      "update to another member's peer URL",
    );
    assert.is((await call(url, "/v3/cluster/member/remove", { ID: learnerId })).status, 200);
    expectOk(
      await call(url, "/v3/cluster/member/update", { ID: self.ID, peerURLs: ownUrls }),
      { header: header(), members: [self] },
      "update back to the member's own URLs",
    );
  });

  check("txn: ops after a write see the new revision; a nested txn has an empty header", async (url) => {
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

  check("watch ids: chosen by the client, or the stream's next free one; a duplicate is refused", async (url) => {
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

  check("watch from a future revision: nothing before it, then its events", async (url) => {
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

  check("range sorting and revision filters, ignore_value/ignore_lease, compare targets, NOPUT filter", async (url) => {
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
}
