// Request ids and ReadIndex contexts are unique per boot: entries an earlier incarnation proposed that commit only
// after a restart must not resolve the new incarnation's requests (which would answer them with an old result).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { silentLogger } from "../../../src/log.js";
import { encodeCommand } from "../../../src/store/mvcc/commands.js";
import { ENTRY_KV, encodeEnvelope } from "../../../src/store/node/envelope.js";
import { firstRequestIdOfBoot } from "../../../src/store/node/replica-node.js";
import { WalPersistence } from "../../../src/store/node/wal-persistence.js";
import type { Entry } from "../../../src/store/raft/types.js";
import { dec, enc, startSolo } from "./solo.js";

const start = (dataDir: string) => startSolo(dataDir);

test("entries of an earlier incarnation committed after a restart do not answer the new incarnation's requests", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-reqid-"));
  let replica: Awaited<ReturnType<typeof start>> | undefined;
  try {
    replica = await start(dir);
    await replica.propose({ type: "put", request: { key: enc("/before"), value: enc("x") } });
    const memberId = replica.memberId;
    await replica.close();
    replica = undefined;

    // What a crash leaves behind: entries the previous incarnation appended (request ids 1..64, as ids used to
    // restart at 1 on every boot) but never saw committed. The restarted node commits them once it is leader again.
    const wal = await WalPersistence.open(dir, silentLogger(), 5000);
    const recovered = await wal.load();
    const lastIndex = recovered.entries.at(-1)?.index ?? recovered.snapshot?.metadata.index ?? 0;
    const stale: Entry[] = [];
    for (let requestId = 1; requestId <= 64; requestId++) {
      const command = encodeCommand({ type: "put", request: { key: enc("/old"), value: enc(`${requestId}`) } });
      stale.push({
        term: recovered.hardState.term,
        index: lastIndex + requestId,
        type: "normal",
        data: encodeEnvelope(ENTRY_KV, memberId, requestId, command),
      });
    }
    await wal.save(null, stale, true);
    await wal.close();

    replica = await start(dir);
    // Proposed at once, while the node has no leader yet: it waits, retrying, while the stale entries commit first.
    const put = await replica.propose({ type: "put", request: { key: enc("/new"), value: enc("y"), prev_kv: true } });
    const written = replica.kv.range({ key: enc("/new") }).kvs[0];
    assert.is(dec(written?.value), "y");
    assert.is(put.header.revision, written?.mod_revision, "the answer is the new put's own result");
    assert.is(put.prev_kv, undefined);
    assert.is(dec(replica.kv.range({ key: enc("/old") }).kvs[0]?.value), "64", "the old entries were applied");
  } finally {
    await replica?.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("request ids of a later boot start above every id of an earlier one and stay exact in a float64", () => {
  const now = Date.now();
  const first = firstRequestIdOfBoot(now);
  assert.ok(first > 64);
  assert.ok(firstRequestIdOfBoot(now + 1) - first >= 1024);
  assert.ok(Number.isSafeInteger(first + 2 ** 31));
  const in2200 = Date.UTC(2200, 0, 1);
  assert.ok(Number.isSafeInteger(firstRequestIdOfBoot(in2200)));
});

test.run();
