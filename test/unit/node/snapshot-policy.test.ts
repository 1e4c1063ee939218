// When a member snapshots its store: after a number of entries, and in a larger store once those entries hold half
// as many bytes as the last snapshot.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MAX_ENTRIES_BETWEEN_SNAPSHOTS, snapshotDue } from "../../../src/store/node/snapshot-policy.js";

const scaled = { everyEntries: 10_000, scalesWithSize: true };
const fixed = { everyEntries: 10_000, scalesWithSize: false };

test("never before the configured number of entries, however many bytes they hold", () => {
  assert.not.ok(snapshotDue(scaled, { entries: 9_999, entryBytes: 50_000_000, snapshotBytes: 0 }));
  assert.not.ok(snapshotDue(fixed, { entries: 9_999, entryBytes: 50_000_000, snapshotBytes: 0 }));
});

test("a small store (or none yet) snapshots every configured number of entries", () => {
  assert.ok(snapshotDue(scaled, { entries: 10_000, entryBytes: 1_300_000, snapshotBytes: 0 }));
  assert.ok(snapshotDue(scaled, { entries: 10_000, entryBytes: 1_300_000, snapshotBytes: 125_000 }));
});

test("a large store waits until the entries since its last snapshot hold half as many bytes as it", () => {
  // 120,000 keys: a 15 MB snapshot, and puts of ~150 bytes.
  const snapshotBytes = 15_000_000;
  assert.not.ok(snapshotDue(scaled, { entries: 30_000, entryBytes: 4_500_000, snapshotBytes }));
  assert.not.ok(snapshotDue(scaled, { entries: 49_999, entryBytes: snapshotBytes / 2 - 1, snapshotBytes }));
  assert.ok(snapshotDue(scaled, { entries: 50_000, entryBytes: snapshotBytes / 2, snapshotBytes }));
});

test("a log of small entries is capped by count: etcd's default interval", () => {
  const since = { entryBytes: 3_000_000, snapshotBytes: 15_000_000 };
  assert.not.ok(snapshotDue(scaled, { ...since, entries: MAX_ENTRIES_BETWEEN_SNAPSHOTS - 1 }));
  assert.ok(snapshotDue(scaled, { ...since, entries: MAX_ENTRIES_BETWEEN_SNAPSHOTS }));
});

test("a configured interval does not scale", () => {
  assert.ok(snapshotDue(fixed, { entries: 10_000, entryBytes: 0, snapshotBytes: 15_000_000 }));
});

test.run();
