// Compatibility suite, part 4: binary keys, open-ended ranges and a lease that expires (see api-suite.ts).
import * as assert from "uvu/assert";
import { call, StreamSession } from "./api-client.js";
import { expectOk, header, normalize, type SuiteContext } from "./api-expect.js";
import { waitFor } from "./ports.js";

const raw = (bytes: number[]) => Buffer.from(bytes).toString("base64");
const text = (value: string) => Buffer.from(value).toString("base64");

async function currentRevision(url: string): Promise<number> {
  const now = await call(url, "/v3/kv/range", { key: text("/none") });
  return Number((now.json?.header as { revision?: string } | undefined)?.revision);
}

export function defineEdgeChecks({ check }: SuiteContext): void {
  check("binary keys and values; a prefix ending in 0xff; range_end \\0 means 'to the end'", async (url) => {
    const c = await currentRevision(url);
    // Keys sort as bytes: 0xfe 0xff < 0xff < 0xff 0x00 < 0xff 0xff; values may hold any byte.
    const keys = [[0xfe, 0xff], [0xff], [0xff, 0x00], [0xff, 0xff]];
    for (const key of keys) await call(url, "/v3/kv/put", { key: raw(key), value: raw([0, 1, 0xff]) });
    const entry = (key: number[], rev: number) => ({
      key: raw(key),
      create_revision: String(rev),
      mod_revision: String(rev),
      version: "1",
      value: raw([0, 1, 0xff]),
    });
    expectOk(
      await call(url, "/v3/kv/range", { key: raw([0xff]), range_end: raw([0]) }),
      {
        header: header(c + 4),
        kvs: [entry([0xff], c + 2), entry([0xff, 0x00], c + 3), entry([0xff, 0xff], c + 4)],
        count: "3",
      },
      "from 0xff to the end of the keyspace",
    );
    // etcd: the prefix end of [0xff] has no successor, so a prefix range of 0xff is spelled range_end "\0" too;
    // a prefix [0xfe] ends at [0xff].
    expectOk(
      await call(url, "/v3/kv/range", { key: raw([0xfe]), range_end: raw([0xff]), keys_only: true }),
      {
        header: header(c + 4),
        kvs: [{ key: raw([0xfe, 0xff]), create_revision: String(c + 1), mod_revision: String(c + 1), version: "1" }],
        count: "1",
      },
      "prefix 0xfe",
    );
    expectOk(
      await call(url, "/v3/kv/deleterange", { key: raw([0xfe]), range_end: raw([0]) }),
      { header: header(c + 5), deleted: "4" },
      "delete to the end",
    );
  });

  check("a lease that is not kept alive expires: its keys are deleted (watchers see it), TTL -1", async (url) => {
    const c = await currentRevision(url);
    const id = "7101";
    expectOk(
      await call(url, "/v3/lease/grant", { TTL: "2", ID: id }),
      { header: header(c), ID: id, TTL: "2" },
      "grant",
    );
    await call(url, "/v3/kv/put", { key: text("/compat/expiring"), value: text("v"), lease: id }); // c+1
    const watch = new StreamSession(url, "/v3/watch");
    watch.send({ create_request: { key: text("/compat/expiring"), start_revision: String(c + 2) } });
    watch.finish();
    assert.equal(normalize(await watch.next()), { result: { header: header(c + 1), created: true } });
    // Expiry is the leader's decision, some time after the TTL: poll instead of assuming a delay.
    await waitFor(
      "the lease to expire",
      async () => {
        const ttl = await call(url, "/v3/lease/timetolive", { ID: id });
        return (ttl.json as { TTL?: string }).TTL === "-1";
      },
      15_000,
    );
    assert.equal(normalize(await watch.next(10_000)), {
      result: {
        header: header(c + 2),
        events: [{ type: "DELETE", kv: { key: text("/compat/expiring"), mod_revision: String(c + 2) } }],
      },
    });
    expectOk(await call(url, "/v3/kv/range", { key: text("/compat/expiring") }), { header: header(c + 2) }, "key gone");
    watch.close();
  });
}
