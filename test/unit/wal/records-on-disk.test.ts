// What the WAL leaves on disk and refuses to read back: private permissions (as etcd: 0700 dirs, 0600 files), a
// record the reader would refuse is never written, and a record whose checksum is good but whose payload cannot be
// decoded stops start-up with its file and offset (a bug or a format change, never a torn tail to drop).
import { mkdtemp, open, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Entry } from "../../../src/store/raft/types.js";
import { WalCorruptError } from "../../../src/store/wal/errors.js";
import { encodeHardState, entryPayloadBytes, writeEntry } from "../../../src/store/wal/payloads.js";
import { encodeRecord, MAX_RECORD_PAYLOAD_BYTES, RecordType, scanRecords } from "../../../src/store/wal/record.js";
import { Wal } from "../../../src/store/wal/wal.js";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vigie-wal-disk-"));
  dirs.push(dir);
  return dir;
}

test.after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function entry(index: number): Entry {
  return { index, term: 1, type: "normal", data: Buffer.from(`value-${index}`) };
}

/** A data dir with entries 1..3, closed; returns the newest segment's path and where its records end. */
async function smallLog(): Promise<{ dir: string; segment: string; end: number }> {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir);
  await wal.append([entry(1), entry(2), entry(3)], { term: 1, vote: 1, commit: 3 });
  await wal.close();
  const name = (await readdir(join(dir, "wal"))).find((n) => n.endsWith(".wal"))!;
  const segment = join(dir, "wal", name);
  return { dir, segment, end: scanRecords(await readFile(segment), segment, false).validBytes };
}

/** Writes a well-framed record (good checksums) at `offset`, in the preallocated zeros after the last record. */
async function writeRecordAt(path: string, offset: number, record: Buffer): Promise<void> {
  const handle = await open(path, "r+");
  await handle.write(record, 0, record.length, offset);
  await handle.close();
}

async function openError(dir: string): Promise<unknown> {
  try {
    const replay = await Wal.open(dir);
    await replay.wal.close();
    return null;
  } catch (error) {
    return error;
  }
}

test("the wal and snap directories are 0700, segments, marker and snapshots 0600", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir, { segmentBytes: 512 });
  for (let i = 1; i <= 20; i++) await wal.append([entry(i)]);
  await wal.saveSnapshot({
    metadata: { index: 10, term: 1, confState: { voters: [1], learners: [] } },
    data: Buffer.from("x"),
  });
  await wal.close();
  for (const sub of ["wal", "snap"]) {
    assert.is((await stat(join(dir, sub))).mode & 0o777, 0o700, `${sub}/`);
    const names = await readdir(join(dir, sub));
    assert.ok(names.length > 0);
    for (const name of names) assert.is((await stat(join(dir, sub, name))).mode & 0o777, 0o600, `${sub}/${name}`);
  }
});

test("an entry the reader would refuse as over the record limit is never written", async () => {
  const dir = await tempDir();
  const { wal } = await Wal.open(dir);
  const huge: Entry = { index: 1, term: 1, type: "normal", data: new Uint8Array(MAX_RECORD_PAYLOAD_BYTES) };
  assert.throws(() => void wal.append([huge]), /over the WAL record limit/);
  // Refused before anything was queued: the WAL goes on.
  await wal.append([entry(1)]);
  await wal.close();
  const replay = await Wal.open(dir);
  assert.is(replay.entries.length, 1);
  await replay.wal.close();
});

test("an entry record with a good checksum but an unknown entry type stops start-up at its offset", async () => {
  const { dir, segment, end } = await smallLog();
  const next = entry(4);
  const payload = Buffer.alloc(entryPayloadBytes(next));
  writeEntry(next, payload, 0);
  payload[16] = 9;
  await writeRecordAt(segment, end, encodeRecord(RecordType.Entry, payload));
  const error = await openError(dir);
  assert.instance(error, WalCorruptError);
  assert.is((error as WalCorruptError).file, segment);
  assert.is((error as WalCorruptError).offset, end);
  assert.match((error as Error).message, "unknown entry type 9");
});

test("a hard state record of the wrong length, or an entry leaving a gap, stops start-up at its offset", async () => {
  const short = await smallLog();
  await writeRecordAt(
    short.segment,
    short.end,
    encodeRecord(RecordType.HardState, encodeHardState({ term: 1, vote: 1, commit: 1 }).subarray(0, 16)),
  );
  const a = await openError(short.dir);
  assert.instance(a, WalCorruptError);
  assert.is((a as WalCorruptError).offset, short.end);
  assert.match((a as Error).message, "hard state record has 16 bytes");

  const gap = await smallLog();
  const far = entry(9);
  const payload = Buffer.alloc(entryPayloadBytes(far));
  writeEntry(far, payload, 0);
  await writeRecordAt(gap.segment, gap.end, encodeRecord(RecordType.Entry, payload));
  const b = await openError(gap.dir);
  assert.instance(b, WalCorruptError);
  assert.is((b as WalCorruptError).offset, gap.end);
  assert.match((b as Error).message, "entry 9 leaves a gap after entry 3");
});

test("a record of an unknown type with good checksums is corruption, not a torn tail", async () => {
  const { dir, segment, end } = await smallLog();
  // Type 6 with both checksums right: only a newer format (or a bug) writes this.
  const fixed = encodeRecordOfType(6, Buffer.alloc(8));
  await writeRecordAt(segment, end, fixed);
  const error = await openError(dir);
  assert.instance(error, WalCorruptError);
  assert.is((error as WalCorruptError).offset, end);
  assert.match((error as Error).message, "unknown record type 6");
});

/** encodeRecord for a type the writer does not know (the cast is the point of the test). */
function encodeRecordOfType(type: number, payload: Buffer): Buffer {
  return encodeRecord(type as (typeof RecordType)[keyof typeof RecordType], payload);
}

test.run();
