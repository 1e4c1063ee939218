// Putting a rendered file in place safely: stage it next to the destination, let `check` judge the staged copy,
// then swap it in atomically (rename) or overwrite in place (bind-mounted single files), fsyncing file and directory
// so a crash leaves either the old or the new file, never a torn one. Nothing happens when the bytes are unchanged.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, chown, copyFile, open, readFile, rename, unlink } from "node:fs/promises";
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

export async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Writes `content` to `spec.destination` unless it already holds exactly those bytes. */
export async function writeRendered(spec: WriteSpec, content: Buffer): Promise<WriteOutcome> {
  let previous: Buffer | undefined;
  try {
    previous = await readIfExists(spec.destination);
  } catch (error) {
    throw new WriteFailedError(spec.name, `cannot read ${spec.destination}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (previous?.equals(content)) return { changed: false };
  const needsStage = spec.write === "rename" || spec.check !== undefined;
  const staged = needsStage ? await stage(spec, content) : undefined;
  try {
    if (spec.check !== undefined && staged !== undefined) await check(spec, staged);
    if (spec.backup && previous !== undefined) await writeBackup(spec, previous);
    if (spec.write === "rename" && staged !== undefined) {
      await rename(staged, spec.destination);
      await syncDirectory(dirname(spec.destination));
    } else {
      await overwriteInPlace(spec, content);
    }
  } catch (error) {
    if (staged !== undefined) await unlink(staged).catch(() => undefined);
    if (error instanceof CheckFailedError || error instanceof WriteFailedError) throw error;
    throw new WriteFailedError(spec.name, `writing ${spec.destination}: ${(error as Error).message}`, { cause: error });
  }
  if (spec.write === "in-place" && staged !== undefined) await unlink(staged).catch(() => undefined);
  return { changed: true, previous };
}

/**
 * Puts `previous` back (or removes the file when there was none): used when the application refused the new file.
 * No check runs: these bytes were in place and accepted before.
 */
export async function restorePrevious(spec: WriteSpec, previous: Buffer | undefined): Promise<void> {
  if (previous === undefined) {
    await unlink(spec.destination).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
    return;
  }
  await writeRendered({ ...spec, check: undefined, backup: false }, previous);
}

async function stage(spec: WriteSpec, content: Buffer): Promise<string> {
  const directory = dirname(spec.destination);
  const staged = join(directory, `.${basename(spec.destination)}.vigie-${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(staged, "wx", spec.mode ?? 0o644);
    try {
      await handle.writeFile(content);
      // The umask may have narrowed the mode given to open(); set it exactly.
      if (spec.mode !== undefined) await handle.chmod(spec.mode);
      const ids = ownership(spec);
      if (ids !== undefined) await handle.chown(ids.uid, ids.gid);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await unlink(staged).catch(() => undefined);
    throw new WriteFailedError(spec.name, `cannot stage ${staged}: ${(error as Error).message}`, { cause: error });
  }
  return staged;
}

async function check(spec: WriteSpec, staged: string): Promise<void> {
  const argv = (spec.check ?? []).map((part) => part.replaceAll("{{src}}", staged));
  const result = await runArgv(argv, { timeoutMs: spec.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS });
  if (!result.ok) throw new CheckFailedError(spec.name, `${argv.join(" ")}: ${result.summary}`);
}

async function writeBackup(spec: WriteSpec, previous: Buffer): Promise<void> {
  const backup = `${spec.destination}.bak`;
  await copyFile(spec.destination, backup).catch(async () => {
    // The destination changed under us between read and copy: keep the bytes we read.
    const handle = await open(backup, "w");
    await handle.writeFile(previous);
    await handle.close();
  });
}

async function overwriteInPlace(spec: WriteSpec, content: Buffer): Promise<void> {
  const handle = await open(spec.destination, "w", spec.mode ?? 0o644);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (spec.mode !== undefined) await chmod(spec.destination, spec.mode);
  const ids = ownership(spec);
  if (ids !== undefined) await chown(spec.destination, ids.uid, ids.gid);
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
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
