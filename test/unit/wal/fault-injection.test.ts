// Fault injection on real WAL files: cut the newest segment at every byte, flip a bit in every byte, delete
// segments and snapshot files. Each case must recover every record that is still complete on disk, or refuse to
// start with an error naming the file and offset; never drop a complete record silently.
import { cp, mkdtemp, readdir, readFile, rm, truncate, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Entry } from "../../../src/store/raft/types.js";
import { SnapshotCorruptError, WalCorruptError } from "../../../src/store/wal/errors.js";
import { decodeHardState } from "../../../src/store/wal/payloads.js";
import { RecordType, type ScannedRecord, scanRecords } from "../../../src/store/wal/record.js";
import { Wal, type WalReplay } from "../../../src/store/wal/wal.js";

const ENTRY_COUNT = 60;
const SEGMENT_BYTES = 1024;
const root = await mkdtemp(join(tmpdir(), "vigie-wal-faults-"));
const template = join(root, "template");

/** Deterministic, never-zero payload bytes (a zero run would look like a torn sector). */
function payload(index: number): Uint8Array {
  const length = 20 + ((index * 37) % 50);
  return Uint8Array.from({ length }, (_, i) => 1 + ((index * 131 + i * 17) % 255));
}

function entry(index: number): Entry {
  return { index, term: 1 + Math.floor(index / 20), type: "normal", data: payload(index) };
}

async function buildTemplate(): Promise<void> {
  const { wal } = await Wal.open(template, { segmentBytes: SEGMENT_BYTES });
  for (let i = 1; i <= ENTRY_COUNT; i++) {
    await wal.append([entry(i)], { term: entry(i).term, vote: 1, commit: i });
    if (i === 30) {
      // Mid-log, so the snapshot marker sits in an older segment and in the newer segments' preludes.
      const metadata = { index: 10, term: 1, confState: { voters: [1], learners: [] } };
      await wal.saveSnapshot({ metadata, data: payload(999) });
    }
  }
  await wal.close();
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(join(dir, "wal"))).filter((f) => f.endsWith(".wal")).sort();
}

async function freshCopy(name: string): Promise<string> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await cp(template, dir, { recursive: true });
  return dir;
}

async function openOrError(dir: string): Promise<WalReplay | Error> {
  try {
    const replay = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
    await replay.wal.close();
    return replay;
  } catch (error) {
    return error as Error;
  }
}

function assertEntries(entries: readonly Entry[], lastIndex: number, context: string): void {
  // Index 10 is covered by the snapshot: the log starts at 11.
  assert.is(entries.length, lastIndex - 10, `${context}: entry count`);
  entries.forEach((e, i) => {
    const expected = entry(11 + i);
    assert.is(e.index, expected.index, context);
    assert.is(e.term, expected.term, context);
    assert.equal(Buffer.from(e.data), Buffer.from(expected.data), `${context}: data of ${e.index}`);
  });
}

await buildTemplate();
const files = await segmentFiles(template);
const lastName = files[files.length - 1]!;
const lastPath = (dir: string) => join(dir, "wal", lastName);
const intactLast = await readFile(lastPath(template));
const lastRecords: ScannedRecord[] = scanRecords(intactLast, lastName, false).records;
const entryRecordsInLast = lastRecords.filter((r) => r.type === RecordType.Entry).length;
const recordEnd = (r: ScannedRecord) => r.offset + 12 + r.payload.length;

test.after(async () => {
  await rm(root, { recursive: true, force: true });
});

test("the template spans several segments and the newest holds entries", () => {
  assert.ok(files.length >= 4, `segments: ${files.length}`);
  assert.ok(entryRecordsInLast >= 2, `entries in the newest segment: ${entryRecordsInLast}`);
});

test("cutting the newest segment at every byte keeps exactly the complete records", async () => {
  const dir = await freshCopy("cut");
  const preludeHardState = lastRecords.find((r) => r.type === RecordType.HardState)!;
  for (let cut = 0; cut <= intactLast.length; cut++) {
    await writeFile(lastPath(dir), intactLast.subarray(0, cut));
    const result = await openOrError(dir);
    if (result instanceof Error) throw new Error(`cut at ${cut}: ${result.message}`);
    const complete = lastRecords.filter((r) => recordEnd(r) <= cut);
    const keptEntries = complete.filter((r) => r.type === RecordType.Entry).length;
    assertEntries(result.entries, ENTRY_COUNT - entryRecordsInLast + keptEntries, `cut at ${cut}`);
    const lastHardState = [...complete].reverse().find((r) => r.type === RecordType.HardState) ?? preludeHardState;
    const place = { file: lastName, offset: lastHardState.offset };
    assert.equal(result.hardState, decodeHardState(lastHardState.payload, place), `cut at ${cut}: hard state`);
  }
});

test("after a cut, the WAL truncates the torn tail and keeps appending", async () => {
  for (const cut of [intactLast.length - 1, intactLast.length - 7, 5, recordEnd(lastRecords[0]!) + 3]) {
    const dir = await freshCopy(`cut-append-${cut}`);
    await truncate(lastPath(dir), cut);
    const first = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
    const next = (first.entries[first.entries.length - 1]?.index ?? 10) + 1;
    await first.wal.append([entry(next)], { term: entry(next).term, vote: 1, commit: next });
    await first.wal.close();
    const second = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
    assertEntries(second.entries, next, `append after cut at ${cut}`);
    await second.wal.close();
  }
});

test("a bit flipped anywhere in the two newest segments stops start-up with the file and offset", async () => {
  const dir = await freshCopy("flip");
  for (const name of files.slice(-2)) {
    const path = join(dir, "wal", name);
    const intact = await readFile(path);
    for (let offset = 0; offset < intact.length; offset++) {
      const damaged = Buffer.from(intact);
      damaged[offset]! ^= 1 << (offset % 8);
      await writeFile(path, damaged);
      const result = await openOrError(dir);
      if (!(result instanceof Error)) {
        throw new Error(`flip at ${name}:${offset} was accepted (${result.entries.length} entries)`);
      }
      assert.instance(result, WalCorruptError, `${name}:${offset}: ${result.message}`);
      const corrupt = result as WalCorruptError;
      assert.is(corrupt.file, path);
      assert.ok(corrupt.offset <= offset, `${name}:${offset}: reported offset ${corrupt.offset}`);
      assert.match(corrupt.message, name);
    }
    await writeFile(path, intact);
  }
  const replay = await openOrError(dir);
  assert.not.instance(replay, Error, "the restored files open again");
});

test("deleting the newest, a middle or every segment refuses to start", async () => {
  const newest = await freshCopy("delete-newest");
  await unlink(lastPath(newest));
  const a = await openOrError(newest);
  assert.instance(a, WalCorruptError);
  assert.match((a as Error).message, "missing");

  const middle = await freshCopy("delete-middle");
  await unlink(join(middle, "wal", files[1]!));
  const b = await openOrError(middle);
  assert.instance(b, WalCorruptError);
  assert.match((b as Error).message, "missing");

  const all = await freshCopy("delete-all");
  for (const name of files) await unlink(join(all, "wal", name));
  const c = await openOrError(all);
  assert.instance(c, WalCorruptError);
});

test("a missing or damaged snapshot file refuses to start", async () => {
  const missing = await freshCopy("snap-missing");
  for (const name of await readdir(join(missing, "snap"))) await unlink(join(missing, "snap", name));
  assert.instance(await openOrError(missing), SnapshotCorruptError);

  const damaged = await freshCopy("snap-damaged");
  const [snapName] = (await readdir(join(damaged, "snap"))).filter((n) => n.endsWith(".snap"));
  const snapPath = join(damaged, "snap", snapName!);
  const content = await readFile(snapPath);
  content[content.length >> 1]! ^= 0x10;
  await writeFile(snapPath, content);
  const result = await openOrError(damaged);
  assert.instance(result, SnapshotCorruptError);
  assert.match((result as Error).message, snapName!);
});

test("a zero-filled tail and a torn last sector are truncated without losing complete records", async () => {
  const zeros = await freshCopy("zero-tail");
  await writeFile(lastPath(zeros), Buffer.concat([intactLast, Buffer.alloc(3000)]));
  const a = await openOrError(zeros);
  assert.not.instance(a, Error);
  assertEntries((a as WalReplay).entries, ENTRY_COUNT, "zero tail");

  // A final record spanning sectors whose second half never reached the disk (zeros): a torn write.
  const torn = await freshCopy("torn-sector");
  const { wal } = await Wal.open(torn, { segmentBytes: 1 << 20 });
  await wal.append([{ index: ENTRY_COUNT + 1, term: 9, type: "normal", data: new Uint8Array(1500).fill(7) }]);
  await wal.close();
  const newestPath = join(torn, "wal", (await segmentFiles(torn)).at(-1)!);
  const content = await readFile(newestPath);
  // The records end before the file does: the WAL keeps preallocated zeros after them.
  const recordsEnd = scanRecords(content, newestPath, false).validBytes;
  assert.ok(recordsEnd < content.length, "the segment has preallocated space after its records");
  const boundary = Math.ceil((recordsEnd - 1200) / 512) * 512;
  content.fill(0, boundary);
  await writeFile(newestPath, content);
  const b = await openOrError(torn);
  assert.not.instance(b, Error, String(b));
  assertEntries((b as WalReplay).entries, ENTRY_COUNT, "torn sector");
});

test("a crash between creating the next segment and sealing the previous one recovers and repairs", async () => {
  const dir = await freshCopy("unsealed");
  const previousName = files[files.length - 2]!;
  const previousPath = join(dir, "wal", previousName);
  const previous = await readFile(previousPath);
  const previousRecords = scanRecords(previous, previousName, false).records;
  const seal = previousRecords[previousRecords.length - 1]!;
  assert.is(seal.type, RecordType.Seal);
  // Its records, then the zeros the WAL had preallocated: the repair's seal goes where the records end.
  await writeFile(previousPath, Buffer.concat([previous.subarray(0, seal.offset), Buffer.alloc(4096)]));
  const firstEntry = lastRecords.find((r) => r.type === RecordType.Entry)!;
  await truncate(lastPath(dir), firstEntry.offset);
  const first = await openOrError(dir);
  assert.not.instance(first, Error, String(first));
  assertEntries((first as WalReplay).entries, ENTRY_COUNT - entryRecordsInLast, "unsealed");
  const second = await openOrError(dir);
  assert.not.instance(second, Error, `the repair (seal) is durable: ${String(second)}`);

  // The same crash, the seal cut part-way through its write.
  const torn = await freshCopy("torn-seal");
  await writeFile(join(torn, "wal", previousName), previous.subarray(0, seal.offset + 5));
  await truncate(lastPath(torn), firstEntry.offset);
  const repaired = await openOrError(torn);
  assert.not.instance(repaired, Error, String(repaired));
  assertEntries((repaired as WalReplay).entries, ENTRY_COUNT - entryRecordsInLast, "torn seal");
  assert.not.instance(await openOrError(torn), Error, "the repair of a torn seal is durable");
});

test("synced entries missing at the end of a segment are corruption even when zeros end its records", async () => {
  const dir = await freshCopy("zeroed-entries");
  const previousName = files[files.length - 2]!;
  const previousPath = join(dir, "wal", previousName);
  const previous = await readFile(previousPath);
  const entries = scanRecords(previous, previousName, false).records.filter((r) => r.type === RecordType.Entry);
  // Zeroed blocks from the third-to-last entry on (seal included), the newest segment back to its prelude.
  previous.fill(0, entries.at(-3)!.offset);
  await writeFile(previousPath, previous);
  const firstEntry = lastRecords.find((r) => r.type === RecordType.Entry)!;
  await truncate(lastPath(dir), firstEntry.offset);
  const result = await openOrError(dir);
  assert.instance(result, WalCorruptError);
  assert.match((result as Error).message, previousName);
  assert.match((result as Error).message, /entries end at \d+ but the next segment starts at entry \d+/);
});

test.run();
