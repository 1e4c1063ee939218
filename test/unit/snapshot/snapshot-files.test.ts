// Snapshot files as a crash or a bad disk leaves them, next to a log whose older segments were released: a partial
// temp file is ignored and later removed; a complete snapshot the log never named (a crash before its marker) is
// not used; a damaged newest snapshot whose replaced segments are gone stops start-up naming the file (nothing else
// could rebuild that state: a guess would be a silent loss). A large snapshot, written in pieces, reads back whole.
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Snapshot } from "../../../src/store/raft/types.js";
import { SnapshotStore, snapshotFileName } from "../../../src/store/snapshot/snapshot-store.js";
import { SnapshotCorruptError } from "../../../src/store/wal/errors.js";
import { Wal } from "../../../src/store/wal/wal.js";

const OPTIONS = { segmentBytes: 600, keepTailEntries: 2, keepSnapshots: 2 };
const dirs: string[] = [];
test.after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function snapshotAt(index: number): Snapshot {
  return {
    metadata: { index, term: 1, confState: { voters: [1], learners: [] } },
    data: Buffer.from(`state@${index}`),
  };
}

/** Entries 1..60 with a snapshot (and a release of the log behind it) every 20: the first segments are gone. */
async function releasedLog(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vigie-snap-files-"));
  dirs.push(dir);
  const { wal } = await Wal.open(dir, OPTIONS);
  for (let index = 1; index <= 60; index++) {
    await wal.append([{ index, term: 1, type: "normal", data: Buffer.from(`entry-${index}`) }]);
    if (index % 20 === 0) {
      await wal.saveSnapshot(snapshotAt(index));
      await wal.releaseTo(index);
    }
  }
  await wal.close();
  const segments = (await readdir(join(dir, "wal"))).filter((n) => n.endsWith(".wal")).sort();
  assert.ok(!segments[0]!.startsWith("0000000000000000-"), "the first segment was released");
  return dir;
}

test("a partial temp file from a crashed save is ignored, and removed by the next save", async () => {
  const dir = await releasedLog();
  const temp = join(dir, "snap", `.tmp-${snapshotFileName({ term: 1, index: 61 })}`);
  await writeFile(temp, Buffer.from("VSNP half of a snapshot"));
  const { wal, snapshot, entries } = await Wal.open(dir, OPTIONS);
  assert.is(snapshot?.metadata.index, 60);
  assert.equal(Buffer.from(snapshot!.data).toString(), "state@60");
  assert.is(entries.length, 0);
  await wal.append([{ index: 61, term: 1, type: "normal", data: Buffer.from("entry-61") }]);
  await wal.saveSnapshot(snapshotAt(61));
  await wal.close();
  const names = await readdir(join(dir, "snap"));
  assert.not.ok(
    names.some((n) => n.startsWith(".tmp-")),
    names.join(" "),
  );
  assert.equal(names.sort(), [snapshotFileName({ term: 1, index: 60 }), snapshotFileName({ term: 1, index: 61 })]);
});

test("a complete snapshot file the log never named (crash before its marker) is not used", async () => {
  const dir = await releasedLog();
  await new SnapshotStore(join(dir, "snap")).save(snapshotAt(70));
  const { wal, snapshot } = await Wal.open(dir, OPTIONS);
  await wal.close();
  assert.is(snapshot?.metadata.index, 60);
});

test("a damaged newest snapshot whose segments were released stops start-up naming the file", async () => {
  const dir = await releasedLog();
  const path = join(dir, "snap", snapshotFileName({ term: 1, index: 60 }));
  const content = await readFile(path);
  content[content.length - 10]! ^= 0x20;
  await writeFile(path, content);
  let error: unknown = null;
  try {
    const replay = await Wal.open(dir, OPTIONS);
    await replay.wal.close();
  } catch (e) {
    error = e;
  }
  assert.instance(error, SnapshotCorruptError);
  assert.is((error as SnapshotCorruptError).file, path);
  assert.match((error as Error).message, "checksum mismatch");
  // The older snapshot is still there, but the entries between it and 60 are not: it cannot stand in.
  assert.ok((await readdir(join(dir, "snap"))).includes(snapshotFileName({ term: 1, index: 40 })));
});

test("a snapshot of several MiB, written a piece at a time, reads back whole; a byte damaged in a later piece is found", async () => {
  const dir = await mkdtemp(join(tmpdir(), "vigie-snap-pieces-"));
  dirs.push(dir);
  const store = new SnapshotStore(dir);
  await store.init();
  const data = randomBytes(2.5 * 1024 * 1024);
  const snapshot = { metadata: { index: 9, term: 2, confState: { voters: [1, 2, 3], learners: [] } }, data };
  const name = await store.save(snapshot);
  const loaded = await store.load(snapshot.metadata);
  assert.ok(Buffer.from(loaded.data).equals(data), "the bytes read back differ");
  assert.equal(loaded.metadata, snapshot.metadata);
  const path = join(dir, name);
  const content = await readFile(path);
  content[content.length - 4 - 300_000]! ^= 0x01;
  await writeFile(path, content);
  let error: unknown = null;
  try {
    await store.load(snapshot.metadata);
  } catch (e) {
    error = e;
  }
  assert.instance(error, SnapshotCorruptError, "a damaged third piece was loaded");
  assert.match((error as Error).message, "checksum mismatch");
});

test.run();
