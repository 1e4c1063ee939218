// Snapshot files: one per snapshot, named <term>-<index>.snap (hex), written atomically (temp file, fsync,
// rename, fsync directory) with a CRC-32C over the whole content, so a crash leaves either the old set of files
// or the new one, and a damaged file is detected instead of restored.
//
//   u32 magic "VSNP" | u32 format | u32 metadata length | metadata (WAL snapshot payload) | u64 data length | data
//   | u32 CRC-32C of everything before
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { syncDirectory } from "../../directory-sync.js";
import type { Snapshot, SnapshotMetadata } from "../raft/types.js";
import { crc32c } from "../wal/crc32c.js";
import { SnapshotCorruptError } from "../wal/errors.js";
import { decodeSnapshotMetadata, encodeSnapshotMetadata } from "../wal/payloads.js";
import { writeFully } from "../wal/segment-files.js";

const MAGIC = 0x504e5356; // "VSNP" little-endian
const FORMAT_VERSION = 1;
const SUFFIX = ".snap";
const TEMP_PREFIX = ".tmp-";
const NAME_PATTERN = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

export function snapshotFileName(meta: { term: number; index: number }): string {
  return `${hex16(meta.term)}-${hex16(meta.index)}${SUFFIX}`;
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, "0");
}

/**
 * Bytes written (and checksummed) at a time, each piece fdatasynced before the next is written. A snapshot of
 * 100,000 keys is 15 MB; written whole and then fsynced, it left the disk that much to flush at once, and every
 * fdatasync of the WAL (a write's commit) on that disk waited behind it: with three members writing theirs, as
 * they do at the same index, the worst WAL fsyncs in a probe took 14-34 ms, and a cluster's put -> watch rounds took
 * 13-33 ms for ~0.15 s after each snapshot. In 1 MiB pieces the WAL's worst fsyncs were 6-14 ms (256 KiB pieces: no
 * better; 2-4 MiB: 17-21 ms). The checksum goes a piece at a time too: in JavaScript it takes ~1 ms per MiB, and
 * over the whole file in one go it held the event loop ~15 ms.
 */
const PIECE_BYTES = 1024 * 1024;

export class SnapshotStore {
  constructor(readonly dir: string) {}

  /** Creates the directory if needed; true when it did (the caller syncs the parent directory). */
  async init(): Promise<boolean> {
    // Private, as etcd does (0700): a snapshot holds every key and value.
    return (await mkdir(this.dir, { recursive: true, mode: 0o700 })) !== undefined;
  }

  /** Writes `snapshot` durably; returns the file name. Replaces a file of the same term/index. */
  async save(snapshot: Snapshot): Promise<string> {
    const name = snapshotFileName(snapshot.metadata);
    const meta = encodeSnapshotMetadata(snapshot.metadata);
    const head = Buffer.alloc(12);
    head.writeUInt32LE(MAGIC, 0);
    head.writeUInt32LE(FORMAT_VERSION, 4);
    head.writeUInt32LE(meta.length, 8);
    const dataLength = Buffer.alloc(8);
    dataLength.writeUInt32LE(snapshot.data.length % 2 ** 32, 0);
    dataLength.writeUInt32LE(Math.floor(snapshot.data.length / 2 ** 32), 4);
    let crc = crc32c(head);
    crc = crc32c(meta, crc);
    crc = crc32c(dataLength, crc);
    const data = Buffer.from(snapshot.data.buffer, snapshot.data.byteOffset, snapshot.data.byteLength);
    const temp = join(this.dir, TEMP_PREFIX + name);
    const handle = await open(temp, "w", 0o600);
    try {
      // Whole or failed: writev may write less than asked (a full disk or a file size limit gives a short write
      // first, the error only on the next call). Unchecked, a truncated snapshot was renamed into place and named
      // by the log, and its segments released: a data dir that no longer starts.
      let position = await writeFully(handle, [head, meta, dataLength], 0);
      for (let start = 0; start < data.length; start += PIECE_BYTES) {
        const end = Math.min(data.length, start + PIECE_BYTES);
        crc = crc32c(data, crc, start, end);
        position = await writeFully(handle, [data.subarray(start, end)], position);
        if (end < data.length) await handle.datasync();
      }
      const trailer = Buffer.alloc(4);
      trailer.writeUInt32LE(crc, 0);
      await writeFully(handle, [trailer], position);
      await handle.sync();
    } catch (error) {
      await handle.close();
      // A failed save leaves nothing behind (a temp file as large as the store, on a disk that is full).
      await rm(temp, { force: true });
      throw error;
    }
    await handle.close();
    await rename(temp, join(this.dir, name));
    await syncDirectory(this.dir);
    return name;
  }

  /** Reads and verifies the snapshot with this metadata. Throws SnapshotCorruptError (missing file included). */
  async load(meta: { term: number; index: number }): Promise<Snapshot> {
    const name = snapshotFileName(meta);
    const file = join(this.dir, name);
    let content: Buffer;
    try {
      content = await readFile(file);
    } catch (error) {
      throw new SnapshotCorruptError(file, `cannot read: ${(error as Error).message}`);
    }
    const snapshot = decodeSnapshotFile(content, file);
    if (snapshot.metadata.index !== meta.index || snapshot.metadata.term !== meta.term) {
      throw new SnapshotCorruptError(file, "metadata does not match the file name");
    }
    return snapshot;
  }

  /** Snapshot files present, oldest first. */
  async list(): Promise<{ name: string; term: number; index: number }[]> {
    const names = await readdir(this.dir);
    const found: { name: string; term: number; index: number }[] = [];
    for (const name of names) {
      const match = NAME_PATTERN.exec(name);
      if (match) found.push({ name, term: Number.parseInt(match[1]!, 16), index: Number.parseInt(match[2]!, 16) });
    }
    return found.sort((a, b) => a.index - b.index || a.term - b.term);
  }

  /** Deletes leftover temp files and all but the newest `keep` snapshots (never `protect`, the one in use). */
  async purge(keep: number, protect: { term: number; index: number } | null): Promise<string[]> {
    const removed: string[] = [];
    for (const name of await readdir(this.dir)) {
      if (name.startsWith(TEMP_PREFIX)) {
        await rm(join(this.dir, name), { force: true });
        removed.push(name);
      }
    }
    const files = await this.list();
    const protectedName = protect === null ? "" : snapshotFileName(protect);
    for (const file of files.slice(0, Math.max(0, files.length - keep))) {
      if (file.name === protectedName) continue;
      await rm(join(this.dir, file.name), { force: true });
      removed.push(file.name);
    }
    return removed;
  }
}

export function decodeSnapshotFile(content: Buffer, file: string): Snapshot {
  if (content.length < 12 + 8 + 4) throw new SnapshotCorruptError(file, `only ${content.length} bytes`);
  const stored = content.readUInt32LE(content.length - 4);
  const actual = crc32c(content.subarray(0, content.length - 4));
  if (stored !== actual) throw new SnapshotCorruptError(file, "checksum mismatch");
  if (content.readUInt32LE(0) !== MAGIC) throw new SnapshotCorruptError(file, "bad magic");
  const version = content.readUInt32LE(4);
  if (version !== FORMAT_VERSION) throw new SnapshotCorruptError(file, `unsupported format ${version}`);
  const metaLength = content.readUInt32LE(8);
  const metaEnd = 12 + metaLength;
  if (metaEnd + 8 + 4 > content.length) throw new SnapshotCorruptError(file, "metadata overruns the file");
  const metadata: SnapshotMetadata = decodeSnapshotMetadata(content.subarray(12, metaEnd), { file, offset: 12 });
  const dataLength = content.readUInt32LE(metaEnd) + content.readUInt32LE(metaEnd + 4) * 2 ** 32;
  if (metaEnd + 8 + dataLength + 4 !== content.length) throw new SnapshotCorruptError(file, "data length mismatch");
  return { metadata, data: new Uint8Array(content.subarray(metaEnd + 8, metaEnd + 8 + dataLength)) };
}
