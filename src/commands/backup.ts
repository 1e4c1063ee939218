// `vigie backup FILE` and `vigie restore FILE`: a logical backup of the key space (every key and its value, read at
// one revision) to a file, and its restore into a cluster, vigie's or etcd's. The values operators set by hand (a
// database master, a feature switch) exist nowhere else: a cluster whose members all lost their data dirs lost them.
// etcdctl's `snapshot save|restore` copies etcd's database file and rebuilds data dirs from it; this one goes
// through the API, so it works against either store and restores into a running cluster. Keys attached to a lease
// are left out: they are service registrations that their agents write again, and restored without their lease
// they would outlive the instance they announce.
//
// The file is JSON lines: a header (format, version, source revision), one line per key (base64 key and value,
// as etcd's JSON API spells bytes), and a trailer with the key count and a SHA-256 of the key lines. A restore
// checks the whole file before it writes anything, so a truncated or damaged file changes nothing.
import { createHash } from "node:crypto";
import { open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UsageError, VigieError } from "../errors.js";
import { rangePages } from "../store/client/range-pages.js";
import { type StoreClient, TXN_MAX_OPS } from "../store/client.js";
import type { ClientOptions } from "./options.js";
import { printLine, toJson, withStore } from "./output.js";

const FORMAT = "vigie-backup";
const VERSION = 1;
/**
 * Key and value bytes per restore transaction: with base64 and JSON around them, a request stays well under the
 * 1.5 MiB etcd and vigie accept. A key too large to share a transaction is written alone.
 */
const RESTORE_TXN_BYTES = 512 * 1024;

/** A backup file that cannot be restored: it names the file and, where it can, the line. */
export class BackupFileError extends VigieError {
  constructor(file: string, detail: string) {
    super("VIGIE_ERR_BACKUP_FILE", `${file}: ${detail}`);
  }
}

interface Entry {
  key: Buffer;
  value: Buffer;
}

export async function runBackup(file: string, options: ClientOptions): Promise<number> {
  if (file === "") throw new UsageError("backup needs the name of the file to write");
  const { entries, revision, skippedLeased } = await withStore(options, readEverything);
  const lines = [JSON.stringify({ format: FORMAT, version: VERSION, revision: String(revision) })];
  const hash = createHash("sha256");
  for (const entry of entries) {
    const line = JSON.stringify({ key: entry.key.toString("base64"), value: entry.value.toString("base64") });
    hash.update(`${line}\n`);
    lines.push(line);
  }
  lines.push(JSON.stringify({ keys: entries.length, skippedLeased, sha256: hash.digest("hex") }));
  await writeDurably(file, `${lines.join("\n")}\n`);
  if (options.writeOut === "json") {
    printLine(toJson({ file, revision: String(revision), keys: entries.length, skippedLeased }));
  } else {
    const skipped = skippedLeased === 0 ? "" : ` (${skippedLeased} keys on leases left out: their agents write them)`;
    printLine(`backed up ${entries.length} keys at revision ${revision} to ${file}${skipped}`);
  }
  return 0;
}

/** Every key without a lease, read in pages at the revision of the first page: one consistent view. */
async function readEverything(
  client: StoreClient,
): Promise<{ entries: Entry[]; revision: number; skippedLeased: number }> {
  const entries: Entry[] = [];
  let skippedLeased = 0;
  let revision: number | undefined;
  // etcd spells "every key" as the range from "\0" to "\0".
  for await (const page of rangePages(client, Buffer.from([0]), Buffer.from([0]))) {
    revision ??= page.header.revision;
    for (const kv of page.kvs) {
      if (kv.lease !== "0") skippedLeased++;
      else entries.push({ key: kv.key, value: kv.value });
    }
  }
  return { entries, revision: revision ?? 0, skippedLeased };
}

/** Written next to its destination, synced, then renamed over it: a crash leaves the old file or the new one. */
async function writeDurably(file: string, text: string): Promise<void> {
  const staged = join(dirname(file), `.${basename(file)}.vigie-${process.pid}.tmp`);
  try {
    // 0600: the values may be secrets (passwords in a DSN).
    const handle = await open(staged, "wx", 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(staged, file);
  } catch (error) {
    await rm(staged, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? `no directory ${dirname(file)}` : (code ?? (error as Error).message);
    throw new VigieError("VIGIE_ERR_BACKUP_WRITE", `cannot write ${file}: ${reason}`, { cause: error });
  }
  const directory = await open(dirname(file), "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

export async function runRestore(file: string, options: ClientOptions): Promise<number> {
  const { entries, revision } = await readBackup(file);
  await withStore(options, async (client) => {
    for (const batch of batches(entries)) {
      if (batch.length === 1) await client.put(batch[0]!.key, batch[0]!.value);
      else await client.txn({ success: batch.map((entry) => ({ put: entry.key, value: entry.value })) });
    }
  });
  if (options.writeOut === "json") printLine(toJson({ file, revision, keys: entries.length }));
  else printLine(`restored ${entries.length} keys from ${file} (backed up at revision ${revision})`);
  return 0;
}

/** The whole file, checked: header, every key line, the trailer's count and checksum. Nothing is written before. */
export async function readBackup(file: string): Promise<{ entries: Entry[]; revision: string }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new BackupFileError(file, `cannot read it (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const header = parseLine(file, lines, 0) as { format?: unknown; version?: unknown; revision?: unknown };
  if (header.format !== FORMAT) throw new BackupFileError(file, `line 1: not a ${FORMAT} file`);
  if (header.version !== VERSION) {
    throw new BackupFileError(file, `line 1: format version ${String(header.version)}, this vigie reads ${VERSION}`);
  }
  const entries: Entry[] = [];
  const hash = createHash("sha256");
  let trailer: { keys?: unknown; sha256?: unknown } | undefined;
  for (let i = 1; i < lines.length; i++) {
    const value = parseLine(file, lines, i) as Record<string, unknown>;
    if (typeof value.key === "string" && typeof value.value === "string") {
      hash.update(`${lines[i]}\n`);
      entries.push({ key: base64(file, i, value.key), value: base64(file, i, value.value) });
      continue;
    }
    if (value.keys === undefined) {
      throw new BackupFileError(file, `line ${i + 1}: neither a key line ({"key","value"}) nor the trailer`);
    }
    if (i !== lines.length - 1)
      throw new BackupFileError(file, `line ${i + 2}: text after the trailer (line ${i + 1})`);
    trailer = value;
  }
  if (trailer === undefined) {
    throw new BackupFileError(file, `ends after ${entries.length} keys without its trailer: the file is truncated`);
  }
  if (trailer.keys !== entries.length) {
    throw new BackupFileError(
      file,
      `the trailer counts ${String(trailer.keys)} keys, the file holds ${entries.length}`,
    );
  }
  if (trailer.sha256 !== hash.digest("hex")) {
    throw new BackupFileError(file, "the key lines do not match the trailer's checksum: the file was changed");
  }
  return { entries, revision: String(header.revision) };
}

function parseLine(file: string, lines: string[], index: number): unknown {
  const line = lines[index];
  if (line === undefined) throw new BackupFileError(file, "empty file");
  try {
    const value: unknown = JSON.parse(line);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // reported below
  }
  throw new BackupFileError(file, `line ${index + 1}: not a JSON object`);
}

function base64(file: string, index: number, text: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new BackupFileError(file, `line ${index + 1}: not base64`);
  }
  return Buffer.from(text, "base64");
}

/** Consecutive entries grouped into transactions of at most TXN_MAX_OPS puts and about RESTORE_TXN_BYTES. */
function* batches(entries: readonly Entry[]): Generator<Entry[]> {
  let batch: Entry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = entry.key.length + entry.value.length;
    if (batch.length > 0 && (batch.length === TXN_MAX_OPS || bytes + size > RESTORE_TXN_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(entry);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}
