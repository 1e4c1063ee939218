// The WAL's contract on real files: replay returns exactly what was appended (with Raft's suffix overwrite),
// hard state survives, segments rotate, concurrent appends share fsyncs, snapshots and purging work.
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Entry } from "../../../src/store/raft/types.js";
import { crc32c } from "../../../src/store/wal/crc32c.js";
import { WalBusyError, WalClosedError } from "../../../src/store/wal/errors.js";
import { decodeEntry, entryPayloadBytes, writeEntry } from "../../../src/store/wal/payloads.js";
import { encodeRecord, encodeRecordWith, RecordType, scanRecords } from "../../../src/store/wal/record.js";
import { Wal } from "../../../src/store/wal/wal.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vigie-wal-"));
  dirs.push(dir);
  return dir;
}

function entry(index: number, term = 1, text = `value-${index}`): Entry {
  return { index, term, type: "normal", data: Buffer.from(text) };
}

function summary(entries: readonly Entry[]): string[] {
  return entries.map((e) => `${e.term}/${e.index}/${e.type}/${Buffer.from(e.data).toString()}`);
}

async function rejects(promise: Promise<unknown>, check: (error: unknown) => boolean): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.ok(check(error), `unexpected error: ${String(error)}`);
    return;
  }
  assert.unreachable("expected a rejection");
}

test.after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

test("crc32c matches the standard check values", () => {
  assert.is(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.is(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.is(crc32c(ascending), 0x46dd794e);
  const text = Buffer.from("incremental checksums continue where the previous stopped");
  assert.is(crc32c(text.subarray(7), crc32c(text.subarray(0, 7))), crc32c(text));
});

test("an entry record written in place is the record of its payload, and scans back to the entry", () => {
  for (const size of [0, 1, 7, 8, 100, 13_000]) {
    const entry: Entry = {
      term: 2 ** 40 + size,
      index: 2 ** 33 + 5,
      type: size % 2 === 0 ? "normal" : "confChange",
      data: Uint8Array.from({ length: size }, (_, i) => (i * 31 + size) % 256),
    };
    const payload = Buffer.alloc(entryPayloadBytes(entry));
    writeEntry(entry, payload, 0);
    const inPlace = encodeRecordWith(RecordType.Entry, entryPayloadBytes(entry), (out, offset) =>
      writeEntry(entry, out, offset),
    );
    assert.equal(inPlace, encodeRecord(RecordType.Entry, payload), `${size} bytes of data`);
    const [record] = scanRecords(inPlace, "test.wal", true).records;
    assert.ok(record !== undefined && record.type === RecordType.Entry);
    const decoded = decodeEntry(record.payload, { file: "test.wal", offset: 0 });
    assert.equal({ ...decoded, data: [...decoded.data] }, { ...entry, data: [...entry.data] });
  }
});

test("a fresh WAL is empty; appended entries and hard state replay after reopen", async () => {
  const dir = await tempDir();
  const first = await Wal.open(dir);
  assert.equal(first.entries, []);
  assert.is(first.snapshot, null);
  assert.equal(first.hardState, { term: 0, vote: 0, commit: 0 });
  await first.wal.append([entry(1), entry(2)], { term: 1, vote: 3, commit: 1 });
  await first.wal.append([{ index: 3, term: 2, type: "confChange", data: new Uint8Array([1, 2, 3]) }]);
  await first.wal.append([], { term: 2, vote: 0, commit: 3 });
  await first.wal.close();
  const second = await Wal.open(dir);
  assert.equal(summary(second.entries), [
    "1/1/normal/value-1",
    "1/2/normal/value-2",
    "2/3/confChange/\u0001\u0002\u0003",
  ]);
  assert.equal(second.hardState, { term: 2, vote: 0, commit: 3 });
  await second.wal.close();
});

test("an append at an existing index replaces the suffix, also across reopen", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir);
  await wal.append([entry(1), entry(2), entry(3), entry(4)]);
  await wal.append([entry(3, 2, "new-3")]);
  await wal.append([entry(4, 2, "new-4"), entry(5, 2, "new-5")]);
  await wal.append([entry(2, 3, "newer-2")]);
  await wal.close();
  const replay = await Wal.open(dir);
  assert.equal(summary(replay.entries), ["1/1/normal/value-1", "3/2/normal/newer-2"]);
  assert.is(replay.wal.lastIndex, 2);
  await replay.wal.close();
});

test("segments rotate at the size limit and replay spans them", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir, { segmentBytes: 1024 });
  for (let i = 1; i <= 200; i++) await wal.append([entry(i, 1, "x".repeat(40))], { term: 1, vote: 1, commit: i - 1 });
  assert.ok(wal.segmentCount > 5, `expected several segments, got ${wal.segmentCount}`);
  await wal.close();
  const files = (await readdir(join(dir, "wal"))).filter((f) => f.endsWith(".wal"));
  assert.ok(files.length > 5);
  const replay = await Wal.open(dir, { segmentBytes: 1024 });
  assert.is(replay.entries.length, 200);
  assert.is(replay.entries[199]!.index, 200);
  assert.equal(replay.hardState, { term: 1, vote: 1, commit: 199 });
  await replay.wal.close();
});

test("64 concurrent appenders share fsyncs and every promise resolves after its data is durable", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir, { segmentBytes: 64 * 1024 });
  let next = 1;
  const writers = Array.from({ length: 64 }, async () => {
    for (let n = 0; n < 20; n++) {
      const index = next++;
      await wal.append([entry(index)]);
    }
  });
  await Promise.all(writers);
  await wal.close();
  const replay = await Wal.open(dir);
  assert.is(replay.entries.length, 64 * 20);
  replay.entries.forEach((e, i) => {
    assert.is(e.index, i + 1);
  });
  await replay.wal.close();
});

test("one append of 5,000 entries (more buffers than one writev takes) is written whole", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir);
  const entries = Array.from({ length: 5000 }, (_, i) => entry(i + 1));
  await wal.append(entries, { term: 1, vote: 1, commit: 5000 });
  await wal.close();
  const replay = await Wal.open(dir);
  assert.equal(summary(replay.entries), summary(entries));
  assert.equal(replay.hardState, { term: 1, vote: 1, commit: 5000 });
  await replay.wal.close();
});

test("a flush up to inlineSyncMaxBytes is written before append returns; a larger one and a rotation go to the thread pool", async () => {
  const dir = await tempDir();
  const options = { segmentBytes: 1024, inlineSyncMaxBytes: 200 };
  const { wal } = await Wal.open(dir, options);
  // Synchronous on purpose: awaiting would give the thread pool its turn.
  // Record bytes, not file sizes: the newest segment has preallocated zeros after its records.
  const segmentBytes = () => {
    let total = 0;
    for (const name of readdirSync(join(dir, "wal"))) {
      if (name.endsWith(".wal")) total += scanRecords(readFileSync(join(dir, "wal", name)), name, true).validBytes;
    }
    return total;
  };
  let before = segmentBytes();
  const small = wal.append([entry(1)], { term: 1, vote: 1, commit: 0 });
  // Not awaited yet: the small flush has already been written (and synced).
  assert.ok(segmentBytes() > before, "the small record is in the file when append returns");
  await small;
  before = segmentBytes();
  const large = wal.append([entry(2, 1, "x".repeat(300))]);
  assert.is(segmentBytes(), before, "the large record waits for the thread pool");
  await large;
  assert.ok(segmentBytes() > before);
  for (let i = 3; i <= 60; i++) await wal.append([entry(i)]);
  assert.ok(wal.segmentCount > 1, "the segments rotated");
  await wal.close();
  const replay = await Wal.open(dir, options);
  const expected = Array.from({ length: 60 }, (_, i) => (i === 1 ? entry(2, 1, "x".repeat(300)) : entry(i + 1)));
  assert.equal(summary(replay.entries), summary(expected));
  assert.equal(replay.hardState, { term: 1, vote: 1, commit: 0 });
  await replay.wal.close();
});

test("the newest segment is kept ahead of its records by preallocated zeros; sealed ones are trimmed to their records", async () => {
  const dir = await tempDir();
  const options = { segmentBytes: 64 * 1024, preallocateBytes: 16 * 1024 };
  const files = () =>
    readdirSync(join(dir, "wal"))
      .filter((name) => name.endsWith(".wal"))
      .sort()
      .map((name) => {
        const content = readFileSync(join(dir, "wal", name));
        return { size: content.length, records: scanRecords(content, name, true).validBytes };
      });
  let { wal } = await Wal.open(dir, options);
  await wal.append([entry(1)], { term: 1, vote: 1, commit: 0 });
  let [newest] = files();
  assert.is(newest!.size, newest!.records + 16 * 1024, "one append extends the file by a whole step");
  // Appends inside the step do not grow the file.
  await wal.append([entry(2)]);
  assert.is(files()[0]!.size, newest!.size);
  await wal.close();

  // Reopened, appends continue where the records end, not at the end of the file.
  ({ wal } = await Wal.open(dir, options));
  for (let i = 3; i <= 400; i++) await wal.append([entry(i, 1, "v".repeat(300))]);
  assert.ok(wal.segmentCount > 1, "the segments rotated");
  await wal.close();
  const all = files();
  for (const sealed of all.slice(0, -1)) assert.is(sealed.size, sealed.records, "a sealed segment has no zeros");
  newest = all.at(-1);
  assert.ok(newest!.size > newest!.records && newest!.size <= options.segmentBytes + 400);
  const replay = await Wal.open(dir, options);
  assert.equal(
    replay.entries.map((e) => e.index),
    Array.from({ length: 400 }, (_, i) => i + 1),
  );
  await replay.wal.close();
});

test("an append that would leave a gap is a programmer error", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir);
  await wal.append([entry(1)]);
  assert.throws(() => wal.append([entry(3)]), /after 1/);
  await wal.close();
});

test("appends beyond the pending limit are refused, and a closed WAL refuses appends", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir, { maxPendingBytes: 4096 });
  const accepted = wal.append([entry(1, 1, "a".repeat(3000))]);
  await rejects(wal.append([entry(2, 1, "b".repeat(3000))]), (e: unknown) => e instanceof WalBusyError);
  await accepted;
  await wal.close();
  await rejects(wal.append([entry(2)]), (e: unknown) => e instanceof WalClosedError);
});

test("a snapshot is stored with the log, replayed with its data, and lets old segments go", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir, { segmentBytes: 2048, keepTailEntries: 10, keepSnapshots: 2 });
  for (let i = 1; i <= 300; i++) await wal.append([entry(i, 1, "y".repeat(30))], { term: 1, vote: 2, commit: i });
  const confState = { voters: [1, 2, 3], learners: [4] };
  await wal.saveSnapshot({ metadata: { index: 100, term: 1, confState }, data: Buffer.from("state@100") });
  await wal.saveSnapshot({ metadata: { index: 200, term: 1, confState }, data: Buffer.from("state@200") });
  await wal.saveSnapshot({ metadata: { index: 250, term: 1, confState }, data: Buffer.from("state@250") });
  const snapFiles = (await readdir(join(dir, "snap"))).filter((f) => f.endsWith(".snap"));
  assert.is(snapFiles.length, 2, "only the newest two snapshot files are kept");
  const segmentsBefore = wal.segmentCount;
  const removed = await wal.releaseTo(250);
  assert.ok(removed > 0, "segments below the snapshot minus the tail are purged");
  assert.is(wal.segmentCount, segmentsBefore - removed);
  await wal.append([entry(301)], { term: 1, vote: 2, commit: 301 });
  await wal.close();
  const replay = await Wal.open(dir);
  assert.equal(replay.snapshot?.metadata, { index: 250, term: 1, confState });
  assert.is(Buffer.from(replay.snapshot!.data).toString(), "state@250");
  assert.is(replay.entries[0]!.index, 251, "entries start right after the snapshot");
  assert.is(replay.entries[replay.entries.length - 1]!.index, 301);
  assert.equal(replay.hardState, { term: 1, vote: 2, commit: 301 });
  await replay.wal.close();
});

test("a snapshot received beyond the log restarts the log after it", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir);
  await wal.append([entry(1), entry(2)]);
  const confState = { voters: [1], learners: [] };
  await wal.saveSnapshot({ metadata: { index: 50, term: 3, confState }, data: Buffer.from("leader state") });
  await wal.append([entry(51, 3), entry(52, 3)], { term: 3, vote: 0, commit: 52 });
  await wal.close();
  const replay = await Wal.open(dir);
  assert.is(replay.snapshot?.metadata.index, 50);
  assert.equal(
    replay.entries.map((e) => e.index),
    [51, 52],
  );
  await replay.wal.close();
});

test.run();
