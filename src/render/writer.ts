// Putting a rendered file in place safely: stage it next to the destination, let `check` judge the staged copy,
// then swap it in atomically (rename) or overwrite in place (bind-mounted single files), fsyncing file and directory
// so a crash leaves either the old or the new file, never a torn one. Unchanged bytes are not rewritten (only a mode or
// owner the config sets is applied); a rewrite keeps the mode and owner the config does not set.
// The file operations are synchronous on purpose: config files are small, and each async call is a thread-pool
// round trip that, under load, costs more than the write itself (put → file latency is what this code is judged on).
// Only the check command is asynchronous, and the staged file's flush when there is a check: it runs in the thread
// pool while the check runs, so the check's spawn hides it.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  close,
  closeSync,
  copyFileSync,
  fchmodSync,
  fchownSync,
  fdatasync,
  fdatasyncSync,
  fsync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { CheckFailedError, WriteFailedError } from "./errors.js";
import { runArgv } from "./run.js";

export interface WriteSpec {
  /** Template name, for messages. */
  name: string;
  destination: string;
  mode?: number | undefined;
  owner?: string | number | undefined;
  group?: string | number | undefined;
  /** argv; every `{{src}}` is replaced by the staged file's path. */
  check?: readonly string[] | undefined;
  checkTimeoutMs?: number;
  backup: boolean;
  write: "rename" | "in-place";
}

export type WriteOutcome =
  | { changed: false }
  | {
      changed: true;
      /** The bytes that were there before (undefined: there was no file); what a failed reload restores. */
      previous: Buffer | undefined;
    };

const DEFAULT_CHECK_TIMEOUT_MS = 30_000;

export function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/**
 * Writes `content` to `spec.destination` unless it already holds exactly those bytes.
 * The staged file is fsynced before the rename (so a crash never leaves a torn file); the directory fsync, which
 * only makes the rename itself durable, may be deferred by passing `deferDirectorySync`: the sidecar then fsyncs
 * after signalling the application, taking that fsync off the put → reload path. The caller must sync every
 * directory it was handed (the sidecar does, in the thread pool: src/directory-sync.ts).
 */
export async function writeRendered(
  spec: WriteSpec,
  content: Buffer,
  deferDirectorySync?: (directory: string) => void,
): Promise<WriteOutcome> {
  let previous: Buffer | undefined;
  try {
    previous = readIfExists(spec.destination);
  } catch (error) {
    throw new WriteFailedError(spec.name, `cannot read ${spec.destination}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const configuresMetadata = spec.mode !== undefined || spec.owner !== undefined || spec.group !== undefined;
  if (previous?.equals(content) && !configuresMetadata) return { changed: false };
  // Only now (a change, or metadata to compare): an unchanged file without mode/owner/group costs no stat.
  const current = previous === undefined ? undefined : statIfExists(spec);
  if (previous?.equals(content)) {
    if (current !== undefined) applyConfiguredMetadata(spec, current);
    return { changed: false };
  }
  const metadata = wantedMetadata(spec, current);
  const needsStage = spec.write === "rename" || spec.check !== undefined;
  // Only a staged file that is renamed into place must be on disk first; one staged for the check alone (in-place
  // writes) is removed afterwards. With a check, the flush waits for the check, alongside it.
  const flush: Flush = spec.write !== "rename" ? "none" : spec.check === undefined ? "now" : "alongside";
  const staged = needsStage ? stage(spec, content, flush, metadata) : undefined;
  try {
    if (spec.check !== undefined && staged !== undefined) await checkAndFlush(spec, staged);
    if (spec.backup && previous !== undefined) writeBackup(spec, previous);
    if (spec.write === "rename" && staged !== undefined) {
      assert.ok(staged.fd === undefined, "a staged file is flushed and closed before it is renamed into place");
      renameSync(staged.path, spec.destination);
      if (deferDirectorySync) deferDirectorySync(dirname(spec.destination));
      else syncDirectoryNow(dirname(spec.destination));
    } else {
      overwriteInPlace(spec, content, previous);
    }
  } catch (error) {
    if (staged !== undefined) {
      // Only an error thrown before the check (by writeRendered's own code) can leave the fd open.
      if (staged.fd !== undefined) closeQuietly(staged.fd);
      unlinkQuietly(staged.path);
    }
    if (error instanceof CheckFailedError || error instanceof WriteFailedError) throw error;
    throw new WriteFailedError(spec.name, `writing ${spec.destination}: ${(error as Error).message}`, { cause: error });
  }
  if (spec.write === "in-place" && staged !== undefined) unlinkQuietly(staged.path);
  return { changed: true, previous };
}

/**
 * Puts `previous` back (or removes the file when there was none): used when the application refused the new file.
 * No check runs: these bytes were in place and accepted before.
 */
export async function restorePrevious(spec: WriteSpec, previous: Buffer | undefined): Promise<void> {
  if (previous === undefined) {
    unlinkQuietly(spec.destination);
    return;
  }
  await writeRendered({ ...spec, check: undefined, backup: false }, previous);
}

function writeAll(fd: number, content: Buffer): void {
  let offset = 0;
  while (offset < content.length) offset += writeSync(fd, content, offset, content.length - offset);
}

/**
 * Creates the staged file; a missing destination directory is created first (as consul-template does), so a fresh
 * container or the quickstart does not need a `mkdir` step before the first render.
 */
function openCreatingDirectory(path: string, mode: number): number {
  try {
    return openSync(path, "wx", mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    return openSync(path, "wx", mode);
  }
}

/** When the staged file reaches the disk: before stage() returns, alongside the check, or never (not renamed). */
type Flush = "now" | "alongside" | "none";

interface Staged {
  path: string;
  /** Still open when its flush runs alongside the check; checkAndFlush() closes it. */
  fd: number | undefined;
  /** fsync rather than fdatasync: mode or ownership were set. */
  fullSync: boolean;
}

function stage(spec: WriteSpec, content: Buffer, flush: Flush, metadata: Metadata): Staged {
  const directory = dirname(spec.destination);
  const path = join(directory, `.${basename(spec.destination)}.vigie-${randomBytes(6).toString("hex")}.tmp`);
  let fd: number | undefined;
  try {
    fd = openCreatingDirectory(path, metadata.mode ?? 0o644);
    writeAll(fd, content);
    // The umask may have narrowed the mode given to open(); set it exactly.
    if (metadata.mode !== undefined) fchmodSync(fd, metadata.mode);
    setOwnership(fd, metadata);
    // Data and size must reach the disk before the rename. fdatasync suffices unless mode or ownership were set,
    // which must be durable too (an unchanged file is not rewritten after a restart, so a lost chown would stay).
    const fullSync = metadata.ids !== undefined || metadata.mode !== undefined;
    if (flush === "alongside") return { path, fd, fullSync };
    if (flush === "now") {
      if (fullSync) fsyncSync(fd);
      else fdatasyncSync(fd);
    }
    closeSync(fd);
    return { path, fd: undefined, fullSync };
  } catch (error) {
    if (fd !== undefined) closeQuietly(fd);
    unlinkQuietly(path);
    throw new WriteFailedError(spec.name, `cannot stage ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Runs the check on the staged file and, when its fd is still open, flushes it in the thread pool meanwhile. Both
 * settle before the fd is closed (a flush still running on a closed, reused fd would hit another file); then the
 * check's failure, or the flush's, is thrown.
 */
async function checkAndFlush(spec: WriteSpec, staged: Staged): Promise<void> {
  const fd = staged.fd;
  const flushing =
    fd === undefined
      ? Promise.resolve()
      : new Promise<void>((resolveFlush, rejectFlush) => {
          const done = (error: Error | null) => (error ? rejectFlush(error) : resolveFlush());
          if (staged.fullSync) fsync(fd, done);
          else fdatasync(fd, done);
        });
  const [checked, flushed] = await Promise.allSettled([check(spec, staged.path), flushing]);
  if (fd !== undefined) {
    staged.fd = undefined;
    await new Promise<void>((resolveClose) => close(fd, () => resolveClose()));
  }
  if (checked.status === "rejected") throw checked.reason;
  if (flushed.status === "rejected") {
    const reason = (flushed.reason as Error).message;
    throw new WriteFailedError(spec.name, `cannot flush ${staged.path}: ${reason}`, { cause: flushed.reason });
  }
}

async function check(spec: WriteSpec, staged: string): Promise<void> {
  const argv = (spec.check ?? []).map((part) => part.replaceAll("{{src}}", staged));
  const result = await runArgv(argv, { timeoutMs: spec.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS });
  if (!result.ok) throw new CheckFailedError(spec.name, `${argv.join(" ")}: ${result.summary}`);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

function writeBackup(spec: WriteSpec, previous: Buffer): void {
  const backup = `${spec.destination}.bak`;
  try {
    copyFileSync(spec.destination, backup);
  } catch {
    // The destination changed under us between read and copy: keep the bytes we read.
    const fd = openSync(backup, "w");
    try {
      writeAll(fd, previous);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Overwrites the destination's inode. Opening with "w" truncates before the first byte is written, so when the
 * write fails (EFBIG, ENOSPC, EIO) the previous bytes are written back (or the new file removed): the destination
 * never stays torn while the caller reports that the previous file was kept.
 */
function overwriteInPlace(spec: WriteSpec, content: Buffer, previous: Buffer | undefined): void {
  const fd = openSync(spec.destination, "w", spec.mode ?? 0o644);
  try {
    writeAll(fd, content);
    // The inode is kept, and with it its mode and owner: only what the config sets changes.
    if (spec.mode !== undefined) fchmodSync(fd, spec.mode);
    const ids = ownership(spec);
    if (ids !== undefined) fchownSync(fd, ids.uid, ids.gid);
    fsyncSync(fd);
  } catch (error) {
    const restoreError = putBackInPlace(spec.destination, fd, previous);
    if (restoreError === undefined) throw error;
    throw new WriteFailedError(
      spec.name,
      `writing ${spec.destination}: ${(error as Error).message}; putting the previous content back failed too ` +
        `(${restoreError.message}): the destination is damaged`,
      { cause: error },
    );
  } finally {
    closeSync(fd);
  }
}

/** Undoes a failed in-place write on the open fd; returns the error if that fails too. */
function putBackInPlace(destination: string, fd: number, previous: Buffer | undefined): Error | undefined {
  try {
    if (previous === undefined) {
      unlinkSync(destination);
      return undefined;
    }
    ftruncateSync(fd, 0);
    // Positional writes: the fd's offset is wherever the failed write stopped.
    let offset = 0;
    while (offset < previous.length) offset += writeSync(fd, previous, offset, previous.length - offset, offset);
    fsyncSync(fd);
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

/** On the calling thread: a caller that did not defer the directory fsync waits for it (render --once, restores). */
function syncDirectoryNow(directory: string): void {
  const fd = openSync(directory, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function statIfExists(spec: WriteSpec): Stats | undefined {
  try {
    return statSync(spec.destination);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new WriteFailedError(spec.name, `cannot stat ${spec.destination}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Mode and ownership the new file gets; `idsRequired` is false when the ids are only carried over. */
interface Metadata {
  mode: number | undefined;
  ids: { uid: number; gid: number } | undefined;
  idsRequired: boolean;
}

/**
 * What the config sets, and for what it does not set, what the file in place has: a rename makes a new inode, which
 * would otherwise turn a 0600 root-owned secret into a 0644 file owned by whoever runs vigie (consul-template keeps
 * them too). A destination that is a symlink is replaced by a regular file with its target's mode, as
 * consul-template does: following the link would let whoever can write the directory redirect the write.
 */
function wantedMetadata(spec: WriteSpec, current: Stats | undefined): Metadata {
  const configured = ownership(spec);
  const mode = spec.mode ?? (current === undefined ? undefined : current.mode & 0o7777);
  if (current === undefined) return { mode, ids: configured, idsRequired: true };
  const uid = configured !== undefined && configured.uid !== -1 ? configured.uid : current.uid;
  const gid = configured !== undefined && configured.gid !== -1 ? configured.gid : current.gid;
  return { mode, ids: { uid, gid }, idsRequired: configured !== undefined };
}

/** Carried-over ids are best effort (only root may give a file away, as consul-template); configured ones are not. */
function setOwnership(fd: number, metadata: Metadata): void {
  if (metadata.ids === undefined) return;
  try {
    fchownSync(fd, metadata.ids.uid, metadata.ids.gid);
  } catch (error) {
    if (metadata.idsRequired || (error as NodeJS.ErrnoException).code !== "EPERM") throw error;
  }
}

/** The bytes are right, but a mode/owner/group added to the config must still apply (without a rewrite or reload). */
function applyConfiguredMetadata(spec: WriteSpec, current: Stats): void {
  try {
    if (spec.mode !== undefined && (current.mode & 0o7777) !== spec.mode) chmodSync(spec.destination, spec.mode);
    const ids = ownership(spec);
    if (ids === undefined) return;
    const uid = ids.uid === -1 ? current.uid : ids.uid;
    const gid = ids.gid === -1 ? current.gid : ids.gid;
    if (uid !== current.uid || gid !== current.gid) chownSync(spec.destination, uid, gid);
  } catch (error) {
    if (error instanceof WriteFailedError) throw error;
    throw new WriteFailedError(spec.name, `cannot set mode/owner of ${spec.destination}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function ownership(spec: WriteSpec): { uid: number; gid: number } | undefined {
  if (spec.owner === undefined && spec.group === undefined) return undefined;
  const uid = spec.owner === undefined ? -1 : resolveId(spec.owner, "/etc/passwd", spec.name);
  const gid = spec.group === undefined ? -1 : resolveId(spec.group, "/etc/group", spec.name);
  return { uid, gid };
}

/** Resolves a user or group name through the local database file (Node has no getpwnam). */
function resolveId(nameOrId: string | number, database: string, template: string): number {
  if (typeof nameOrId === "number") return nameOrId;
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  for (const line of readFileSync(database, "utf8").split("\n")) {
    const fields = line.split(":");
    if (fields[0] === nameOrId && fields[2] !== undefined) return Number(fields[2]);
  }
  throw new WriteFailedError(template, `unknown ${database.endsWith("passwd") ? "user" : "group"} "${nameOrId}"`);
}
