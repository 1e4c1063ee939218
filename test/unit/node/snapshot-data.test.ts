// The bytes of a Raft snapshot: the member table's header, then the key space written behind it in one buffer.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { KvStore } from "../../../src/store/mvcc/kv-store.js";
import { decodeSnapshotData, encodeSnapshotData } from "../../../src/store/node/snapshot-data.js";

const header = {
  version: 1 as const,
  members: [{ ID: 7, name: "a", peerURLs: ["http://127.0.0.1:2380"], clientURLs: [], isLearner: false }],
  removed: [3],
};

test("the header and the key space come back as written, the key space from the buffer it was encoded into", () => {
  const kv = new KvStore();
  kv.apply({ type: "put", request: { key: Buffer.from("k"), value: Buffer.from("v") } }, 1);
  let encoded: Uint8Array | undefined;
  const data = encodeSnapshotData(header, (headroom) => {
    encoded = kv.snapshot(headroom);
    return encoded;
  });
  assert.is(data, encoded, "no copy behind the header");
  const decoded = decodeSnapshotData(data);
  assert.equal(decoded.header, header);
  assert.ok(Buffer.from(decoded.kv).equals(kv.snapshot()));
  const copy = new KvStore();
  copy.restore(decoded.kv);
  assert.is(Buffer.from(copy.range({ key: Buffer.from("k") }).kvs[0]!.value).toString(), "v");
});

test("bytes too short for their header are refused with the reason", () => {
  assert.throws(() => decodeSnapshotData(Uint8Array.of(0, 0)), /too short/);
  assert.throws(() => decodeSnapshotData(Uint8Array.of(0, 0, 1, 0, 123)), /overruns/);
});

test.run();
