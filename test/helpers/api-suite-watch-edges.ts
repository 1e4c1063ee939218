// Compatibility suite, last part: watch and keepalive stream edges found by differential testing against etcd 3.4
// (test/integration/differential-watch.test.ts). It runs after every other section and counts revisions from the
// store's revision when each check starts, so its writes disturb no other section.
//
// etcd: its gateway serves HTTP/1.1 streams with Go's net/http, which starts reading away the rest of the request
// body when the first answer is written; a message sent after that may never reach etcd. Each check therefore sends
// its requests in one write, or in two where etcd must answer something first: the one chunk sent after the first
// answer is still read (observed 5 times out of 5; later ones are lost at random).
import * as assert from "uvu/assert";
import { call, StreamSession, untilWatchersSynced } from "./api-client.js";
import { b64, header, kv, normalize, type SuiteContext } from "./api-expect.js";

const lines = (messages: unknown[]) => messages.map((message) => JSON.stringify(message)).join("\n");

async function currentRevision(url: string): Promise<number> {
  const answer = await call(url, "/v3/kv/range", { key: b64("/none") });
  const revision = (answer.json?.header as { revision?: string } | undefined)?.revision;
  assert.match(String(revision), /^\d+$/, `the target answers a range: ${answer.text}`);
  return Number(revision);
}

export function defineWatchEdgeChecks({ check, rev, p }: SuiteContext): void {
  check("watch: a malformed message after the first stops the requests, not the stream", async (url) => {
    const base = await currentRevision(url);
    const watch = new StreamSession(url, "/v3/watch");
    watch.send(
      lines([
        { create_request: { key: b64(`${p}m1`) } },
        { create_request: { key: b64(`${p}m1`), filters: ["NOPE"] } },
        { create_request: { key: b64(`${p}m2`) } },
      ]),
    );
    watch.finish();
    assert.equal(normalize(await watch.next()), { result: { header: header(base), created: true } });
    await call(url, "/v3/kv/put", { key: b64(`${p}m2`), value: b64("x") }); // base + 1: the third create was ignored
    await call(url, "/v3/kv/put", { key: b64(`${p}m1`), value: b64("y") }); // base + 2
    const event = normalize(await watch.next()) as { result: { header: unknown; events: unknown[] } };
    assert.equal(event.result.header, header(base + 2), "no error line: the first watcher still delivers");
    assert.is(await watch.quiet(300), undefined, "nothing for the request after the malformed one");
    assert.not.ok(watch.hasEnded, "the stream stays open");
    watch.close();

    // A message without a request decodes: a malformed one after it no longer fails the request with HTTP 500.
    const empty = new StreamSession(url, "/v3/watch");
    empty.send('{}{"create_request":');
    empty.finish();
    assert.is(await empty.quiet(300), undefined, "no answer at all");
    assert.is(empty.status, undefined, "not even the headers (nothing to send yet)");
    empty.close();
  });

  check("keepalive: a malformed message after the first ends the stream without an error line", async (url) => {
    const base = await currentRevision(url);
    const id = "7301";
    await call(url, "/v3/lease/grant", { TTL: "60", ID: id });
    const keepalive = new StreamSession(url, "/v3/lease/keepalive");
    keepalive.send(`{"ID":"${id}"}{"ID":"!"}{"ID":"${id}"}`);
    keepalive.finish();
    assert.equal(normalize(await keepalive.next()), { result: { header: header(base), ID: id, TTL: "60" } });
    assert.is(await keepalive.nextLine(), undefined, "the stream ends, with no error line and no more answers");
    assert.is(keepalive.status, 200);
    await call(url, "/v3/lease/revoke", { ID: id });
  });

  check("watch: an empty range is refused (id -1); the empty key watches \\0", async (url) => {
    const base = await currentRevision(url);
    const watch = new StreamSession(url, "/v3/watch");
    watch.send(
      lines([
        { create_request: { key: b64(`${p}b`), range_end: b64(`${p}a`) } },
        { create_request: { key: "" } },
        { create_request: { key: b64(`${p}a`), range_end: b64(`${p}a`) } },
        { create_request: { key: b64(`${p}e/`), range_end: "AA==" } },
      ]),
    );
    watch.finish();
    const refused = {
      result: {
        header: header(base),
        watch_id: "-1",
        created: true,
        canceled: true,
        cancel_reason: "mvcc: watcher range is empty",
      },
    };
    assert.equal(normalize(await watch.next()), refused, "end before key");
    // A refused create takes no id: the next watcher is 0.
    assert.equal(normalize(await watch.next()), { result: { header: header(base), created: true } }, "empty key");
    assert.equal(normalize(await watch.next()), refused, "end equal to key");
    assert.equal(
      normalize(await watch.next()),
      { result: { header: header(base), watch_id: "1", created: true } },
      'an end of "\\0" means every key from the key on',
    );
    await call(url, "/v3/kv/put", { key: "AA==", value: b64("z") }); // base + 1: the key "\0"
    assert.equal(
      normalize(await watch.next()),
      { result: { header: header(base + 1), events: [{ kv: kv("\0", "z", base + 1, base + 1, 1) }] } },
      'the watch on the empty key (id 0) sees a put of "\\0"',
    );
    await call(url, "/v3/kv/deleterange", { key: "AA==" }); // base + 2
    assert.equal(
      normalize(await watch.next()),
      {
        result: {
          header: header(base + 2),
          events: [{ type: "DELETE", kv: { key: "AA==", mod_revision: String(base + 2) } }],
        },
      },
      "and its delete",
    );
    watch.close();
  });

  check("watch: a watcher cancelled by compaction keeps its id until the client cancels it", async (url) => {
    // The store was compacted at rev(3) by the compaction section, so a watch from rev(1) is cancelled.
    const base = await currentRevision(url);
    const watch = new StreamSession(url, "/v3/watch");
    watch.send({ create_request: { key: b64(`${p}a`), start_revision: String(rev(1)), watch_id: "5" } });
    // etcd: its watch store checks compaction every 100 ms; the second write comes after that.
    await untilWatchersSynced(url, 300);
    watch.send(
      lines([
        { create_request: { key: b64(`${p}a`), watch_id: "5" } },
        { cancel_request: { watch_id: "5" } },
        { create_request: { key: b64(`${p}a`), watch_id: "5" } },
      ]),
    );
    watch.finish();
    const got: unknown[] = [];
    for (let i = 0; i < 5; i++) got.push(normalize(await watch.next()));
    assert.equal(got, [
      { result: { header: header(base), watch_id: "5", created: true } },
      { result: { header: header(), watch_id: "5", canceled: true, compact_revision: String(rev(3)) } },
      {
        result: {
          header: header(base),
          watch_id: "-1",
          created: true,
          canceled: true,
          cancel_reason: "mvcc: duplicate watch ID provided on the WatchStream",
        },
      },
      { result: { header: header(base), watch_id: "5", canceled: true } },
      { result: { header: header(base), watch_id: "5", created: true } },
    ]);
    watch.close();
  });

  check("watch: a negative start revision is below the compaction: cancelled as compacted", async (url) => {
    const base = await currentRevision(url);
    const watch = new StreamSession(url, "/v3/watch");
    watch.send({ create_request: { key: b64(`${p}a`), start_revision: "-1" } });
    watch.finish();
    assert.equal(normalize(await watch.next()), { result: { header: header(base), created: true } });
    // etcd: -1 < the compact revision (rev(3)); on a store never compacted etcd's compact revision is -1, so -1
    // starts from the next change there and -2 is cancelled with compact_revision -1 (the differential test's
    // first runs cover that).
    assert.equal(normalize(await watch.next()), {
      result: { header: header(), canceled: true, compact_revision: String(rev(3)) },
    });
    watch.close();
  });

  check("watch: fragment splits a response of 2 MiB or more (etcd: max-request-bytes + 512 KiB)", async (url) => {
    const base = await currentRevision(url);
    // Two events of ~2,097,000 bytes in all (below 2 MiB: one message) and two of ~2,097,600 (above: split).
    const sizes: Array<[string, number]> = [
      [`${p}fa/1`, 1_048_400],
      [`${p}fa/2`, 1_048_400],
      [`${p}fb/1`, 1_048_700],
      [`${p}fb/2`, 1_048_700],
    ];
    for (const [key, size] of sizes) {
      const answer = await call(url, "/v3/kv/put", { key: b64(key), value: b64("x".repeat(size)) });
      assert.is(answer.status, 200, answer.text.slice(0, 300));
    }
    const watch = new StreamSession(url, "/v3/watch");
    const from = String(base + 1);
    watch.send(
      lines([
        { create_request: { key: b64(`${p}fa/`), range_end: b64(`${p}fa0`), start_revision: from, fragment: true } },
        { create_request: { key: b64(`${p}fb/`), range_end: b64(`${p}fb0`), start_revision: from, fragment: true } },
      ]),
    );
    watch.finish();
    // The two watchers' messages may interleave (etcd): each watcher's are in order.
    const byWatcher: Record<string, unknown[]> = {};
    for (let i = 0; i < 5; i++) {
      const { result } = (await watch.next(20_000)) as { result: Record<string, unknown> };
      const events = (result.events as Array<{ kv: { key: string; mod_revision: string } }> | undefined) ?? [];
      const id = String(result.watch_id ?? "0");
      byWatcher[id] = [
        ...(byWatcher[id] ?? []),
        {
          created: result.created,
          fragment: result.fragment,
          revision: (result.header as { revision?: string }).revision,
          events: events.map((event) => `${Buffer.from(event.kv.key, "base64")}@${event.kv.mod_revision}`),
        },
      ];
    }
    const at = (index: number) => `${sizes[index]![0]}@${base + index + 1}`;
    const now = String(base + 4);
    assert.equal(byWatcher, {
      "0": [
        { created: true, fragment: undefined, revision: now, events: [] },
        { created: undefined, fragment: undefined, revision: now, events: [at(0), at(1)] },
      ],
      "1": [
        { created: true, fragment: undefined, revision: now, events: [] },
        { created: undefined, fragment: true, revision: now, events: [at(2)] },
        { created: undefined, fragment: undefined, revision: now, events: [at(3)] },
      ],
    });
    watch.close();
    await call(url, "/v3/kv/deleterange", { key: b64(`${p}fa/`), range_end: b64(`${p}fc`) });
  });

  check(
    "watch: history comes in batches of up to 1000 revisions, not events (10 txns of 128 puts: one message)",
    async (url) => {
      const base = await currentRevision(url);
      for (let txn = 0; txn < 10; txn++) {
        const success = Array.from({ length: 128 }, (_, j) => ({
          request_put: { key: b64(`${p}bt/${String(j).padStart(3, "0")}`), value: b64(String(txn)) },
        }));
        const answer = await call(url, "/v3/kv/txn", { success });
        assert.is(answer.status, 200, answer.text.slice(0, 300));
      }
      const watch = new StreamSession(url, "/v3/watch");
      watch.send({
        create_request: { key: b64(`${p}bt/`), range_end: b64(`${p}bt0`), start_revision: String(base + 1) },
      });
      watch.finish();
      assert.equal(normalize(await watch.next()), { result: { header: header(base + 10), created: true } });
      const history = (await watch.next()) as { result: { header: { revision: string }; events: unknown[] } };
      assert.equal(
        { revision: history.result.header.revision, events: history.result.events.length },
        { revision: String(base + 10), events: 1280 },
        "every event of the 10 revisions in one message",
      );
      assert.is(await watch.quiet(300), undefined, "and nothing more");
      watch.close();
      await call(url, "/v3/kv/deleterange", { key: b64(`${p}bt/`), range_end: b64(`${p}bt0`) });
    },
  );

  check("streams: the 200 answer carries Grpc-Metadata-Content-Type like etcd's gateway", async (url) => {
    const keepalive = await fetch(`${url}/v3/lease/keepalive`, { method: "POST", body: '{"ID":"7999"}' });
    await keepalive.text();
    const watch = await fetch(`${url}/v3/watch`, {
      method: "POST",
      body: JSON.stringify({ create_request: { key: b64(`${p}h`) } }),
      signal: AbortSignal.timeout(5_000),
    });
    const headersOf = (response: Response) => ({
      status: response.status,
      type: response.headers.get("content-type"),
      grpc: response.headers.get("grpc-metadata-content-type"),
      origin: response.headers.get("access-control-allow-origin"),
    });
    const expected = { status: 200, type: "application/json", grpc: "application/grpc", origin: "*" };
    assert.equal(headersOf(keepalive), expected, "keepalive");
    assert.equal(headersOf(watch), expected, "watch");
    await watch.body?.cancel();
  });

  check("watch: filters: an unknown number is ignored, null is NOPUT, a non-list fails to decode", async (url) => {
    const base = await currentRevision(url);
    const watch = new StreamSession(url, "/v3/watch");
    watch.send(
      lines([
        { create_request: { key: b64(`${p}fl`), filters: [2, null] } },
        { create_request: { key: b64(`${p}fl`), filters: [7] } },
      ]),
    );
    watch.finish();
    const got: unknown[] = [];
    for (let i = 0; i < 2; i++) got.push(normalize(await watch.next()));
    await call(url, "/v3/kv/put", { key: b64(`${p}fl`), value: b64("1") }); // base + 1, after both creates
    got.push(normalize(await watch.next()));
    assert.equal(got, [
      { result: { header: header(base), created: true } },
      { result: { header: header(base), watch_id: "1", created: true } },
      {
        result: {
          header: header(base + 1),
          watch_id: "1",
          events: [{ kv: kv(`${p}fl`, "1", base + 1, base + 1, 1) }],
        },
      },
    ]);
    assert.is(await watch.quiet(300), undefined, "nothing for the NOPUT watcher");
    watch.close();

    for (const [filters, kind] of [
      [1, "number"],
      [true, "bool"],
      [{}, "object"],
      ["NOPUT", "string"],
    ] as const) {
      const message =
        kind === "string"
          ? 'invalid target "slice" for enum etcdserverpb.WatchCreateRequest_FilterType'
          : `json: cannot unmarshal ${kind} into Go value of type []json.RawMessage`;
      assert.equal(
        await rawCallWatch(url, JSON.stringify({ create_request: { key: b64(`${p}fl`), filters } })),
        { status: 500, body: { error: message, message, code: 2 } },
        `filters: ${JSON.stringify(filters)}`,
      );
    }
  });
}

/** A watch request whose body fails at once: its status and error body. */
async function rawCallWatch(url: string, body: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${url}/v3/watch`, { method: "POST", body, signal: AbortSignal.timeout(5_000) });
  return { status: response.status, body: JSON.parse(await response.text()) };
}
