// A single-node replica (what `vigie agent --dev` runs): real WAL in a temp dir, real peer server on loopback.
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MetricsRegistry } from "../../../src/metrics.js";
import { CompactedError } from "../../../src/store/mvcc/errors.js";
import { TooManyRequestsError } from "../../../src/store/node/errors.js";
import type { WaitTable } from "../../../src/store/node/requests.js";
import { waitFor } from "../../helpers/ports.js";
import { dec, enc, startSolo } from "./solo.js";

const start = startSolo;

test("put, range, txn and a linearizable read on a single node; state survives a restart", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-node-"));
  try {
    const metrics = new MetricsRegistry();
    let replica = await start(dir, metrics);
    const put = await replica.propose({ type: "put", request: { key: enc("/a"), value: enc("1") } });
    assert.is(put.header.revision, 2);
    const put2 = await replica.propose({ type: "put", request: { key: enc("/a"), value: enc("2"), prev_kv: true } });
    assert.is(dec(put2.prev_kv?.value), "1");
    await replica.linearizableBarrier();
    const range = replica.kv.range({ key: enc("/a") });
    assert.is(dec(range.kvs[0]?.value), "2");
    assert.is(range.kvs[0]?.version, 2);
    const members = await replica.members();
    assert.is(members.length, 1);
    assert.is(members[0]?.name, "solo");
    assert.equal(members[0]?.clientURLs, ["http://127.0.0.1:2379"]);
    const status = replica.status();
    assert.is(status.role, "leader");
    assert.is(status.leader, replica.memberId);
    assert.match(metrics.render(), /vigie_server_raft_term 1|vigie_server_raft_term 2/);
    const memberId = replica.memberId;
    await replica.close();

    replica = await start(dir);
    assert.is(replica.memberId, memberId);
    await replica.linearizableBarrier();
    assert.is(dec(replica.kv.range({ key: enc("/a") }).kvs[0]?.value), "2");
    const put3 = await replica.propose({ type: "put", request: { key: enc("/b"), value: enc("x") } });
    assert.is(put3.header.revision, 4);
    await replica.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a data dir the replica creates is private (0700, as etcd's): it holds every value, secrets included", async () => {
  const parent = await mkdtemp(join(tmpdir(), "vigie-node-"));
  try {
    const dir = join(parent, "data");
    const replica = await start(dir);
    await replica.close();
    assert.is((await stat(dir)).mode & 0o777, 0o700);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
});

test("the leader compacts history beyond the retained window, so memory does not grow forever", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-node-"));
  try {
    const replica = await start(dir, new MetricsRegistry(), { historyRetainRevisions: 5, compactionIntervalMs: 20 });
    for (let i = 0; i < 20; i++)
      await replica.propose({ type: "put", request: { key: enc("/k"), value: enc(`${i}`) } });
    // Revision 21 is current; the leader compacts to 21 - 5 = 16.
    const compacted = await waitFor("history compaction", async () => {
      try {
        replica.kv.range({ key: enc("/k"), revision: 10 });
        return undefined;
      } catch (error) {
        return error;
      }
    });
    assert.instance(compacted, CompactedError);
    assert.is(dec(replica.kv.range({ key: enc("/k"), revision: 17 }).kvs[0]?.value), "15");
    assert.is(dec(replica.kv.range({ key: enc("/k") }).kvs[0]?.value), "19");
    await replica.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a data dir whose identity file is gone but whose log remains is refused, naming the file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-node-"));
  try {
    const replica = await start(dir);
    await replica.propose({ type: "put", request: { key: enc("/x"), value: enc("1") } });
    await replica.close();
    await rm(join(dir, "member.json"));
    const refusal = await start(dir).then(
      async (r) => {
        await r.close();
        return "started";
      },
      (error: Error & { code?: string }) => `${error.code}: ${error.message}`,
    );
    assert.match(
      refusal,
      /^VIGIE_ERR_IDENTITY_FILE: .*member\.json: missing, but the data dir holds a write-ahead log/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a lease grant with ID 0 gets an id; an expired lease is revoked by the leader", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-node-"));
  try {
    const replica = await start(dir);
    const grant = await replica.propose({ type: "leaseGrant", request: { TTL: 2 } });
    assert.ok(grant.ID > 0);
    await replica.propose({ type: "put", request: { key: enc("/l"), value: enc("v"), lease: grant.ID } });
    const ka = await replica.leaseKeepAlive(grant.ID);
    assert.is(ka.TTL, 2);
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline && replica.kv.range({ key: enc("/l") }).kvs.length > 0) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.is(replica.kv.range({ key: enc("/l") }).kvs.length, 0, "the key goes with its expired lease");
    await replica.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a proposal refused because too many are pending is not proposed (a retry would apply it twice)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-node-"));
  const replica = await start(dir);
  try {
    // Filling the table with 16,384 real pending proposals would need a cluster that cannot commit; the table
    // itself is what matters, so hold its slots with waiters nobody resolves.
    const table = (replica as unknown as { proposals: WaitTable<number, unknown> }).proposals;
    const held: number[] = [];
    for (;;) {
      const key = -1 - held.length;
      try {
        table.wait(key, 60_000).catch(() => {});
      } catch {
        // Full.
      }
      if (!table.has(key)) break;
      held.push(key);
    }
    assert.ok(held.length > 1000);
    const refused = await replica.propose({ type: "put", request: { key: enc("/overflow"), value: enc("x") } }).then(
      () => "applied",
      (error: unknown) => error,
    );
    assert.instance(refused, TooManyRequestsError);
    for (const key of held) table.reject(key, new Error("released by the test"));
    await replica.propose({ type: "put", request: { key: enc("/after"), value: enc("y") } });
    await replica.linearizableBarrier();
    assert.is(replica.kv.range({ key: enc("/after") }).kvs.length, 1);
    assert.is(replica.kv.range({ key: enc("/overflow") }).kvs.length, 0, "the refused put was never applied");
  } finally {
    await replica.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
