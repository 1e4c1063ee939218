// Putting a rendered file in place safely: stage it next to the destination, let `check` judge the staged copy,
// then swap it in atomically (rename) or overwrite in place (bind-mounted single files), fsyncing file and directory
// so a crash leaves either the old or the new file, never a torn one. Nothing happens when the bytes are unchanged.
// The file operations are synchronous on purpose: config files are small, and each async call is a thread-pool
// round trip that, under load, costs more than the write itself (put → file latency is what this code is judged on).
// Only the check command is asynchronous.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  fchmodSync,
  fchownSync,
  fdatasyncSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
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
 * after signalling the application, taking that fsync off the put → reload path. The caller must call
 * `syncDirectory` for every directory it was handed.
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
  if (previous?.equals(content)) return { changed: false };
  const needsStage = spec.write === "rename" || spec.check !== undefined;
  const staged = needsStage ? stage(spec, content) : undefined;
  try {
    if (spec.check !== undefined && staged !== undefined) await check(spec, staged);
    if (spec.backup && previous !== undefined) writeBackup(spec, previous);
    if (spec.write === "rename" && staged !== undefined) {
      renameSync(staged, spec.destination);
      if (deferDirectorySync) deferDirectorySync(dirname(spec.destination));
      else syncDirectory(dirname(spec.destination));
    } else {
      overwriteInPlace(spec, content, previous);
    }
  } catch (error) {
    if (staged !== undefined) unlinkQuietly(staged);
    if (error instanceof CheckFailedError || error instanceof WriteFailedError) throw error;
    throw new WriteFailedError(spec.name, `writing ${spec.destination}: ${(error as Error).message}`, { cause: error });
  }
  if (spec.write === "in-place" && staged !== undefined) unlinkQuietly(staged);
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

function stage(spec: WriteSpec, content: Buffer): string {
  const directory = dirname(spec.destination);
  const staged = join(directory, `.${basename(spec.destination)}.vigie-${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = openCreatingDirectory(staged, spec.mode ?? 0o644);
    try {
      writeAll(fd, content);
      // The umask may have narrowed the mode given to open(); set it exactly.
      if (spec.mode !== undefined) fchmodSync(fd, spec.mode);
      const ids = ownership(spec);
      if (ids !== undefined) fchownSync(fd, ids.uid, ids.gid);
      // Data and size must reach the disk before the rename. fdatasync suffices unless mode or ownership were set,
      // which must be durable too (an unchanged file is not rewritten after a restart, so a lost chown would stay).
      if (ids !== undefined || spec.mode !== undefined) fsyncSync(fd);
      else fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    unlinkQuietly(staged);
    throw new WriteFailedError(spec.name, `cannot stage ${staged}: ${(error as Error).message}`, { cause: error });
  }
  return staged;
}

async function check(spec: WriteSpec, staged: string): Promise<void> {
  const argv = (spec.check ?? []).map((part) => part.replaceAll("{{src}}", staged));
  const result = await runArgv(argv, { timeoutMs: spec.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS });
  if (!result.ok) throw new CheckFailedError(spec.name, `${argv.join(" ")}: ${result.summary}`);
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

export function syncDirectory(directory: string): void {
  const fd = openSync(directory, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
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
