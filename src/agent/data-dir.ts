// Checks the replica's data dir before the replica opens it, so that an unusable one is reported as the setting the
// user can change (`--data-dir /x: not a directory`) instead of as the first file the replica failed to open deep
// inside it (`/x/member.json: ENOTDIR: not a directory, open ...`).
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { VigieError } from "../errors.js";

export class DataDirError extends VigieError {
  constructor(label: string, reason: string) {
    super("VIGIE_ERR_DATA_DIR", `${label}: ${reason}`);
  }
}

/** The most directories walked up to find an existing parent: deeper than any real path, but never a loop. */
const ANCESTORS_MAX = 256;

function uid(): string {
  return String(process.getuid?.() ?? "?");
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** Reading and writing files in a directory (the data dir itself). */
const USE = constants.R_OK | constants.W_OK | constants.X_OK;
/** Creating an entry in a directory (the data dir's parent). */
const CREATE_IN = constants.W_OK | constants.X_OK;

/** A directory this process has `mode` access to; throws DataDirError naming `label` otherwise. */
async function checkDirectory(path: string, mode: number, label: string, what: string): Promise<void> {
  const stats = await stat(path);
  if (!stats.isDirectory()) throw new DataDirError(label, `${what} is not a directory`);
  try {
    await access(path, mode);
  } catch (error) {
    const needs = mode === USE ? "readable and writable" : "writable";
    const reason =
      errnoOf(error) === "EROFS" ? "is on a read-only file system" : `is not ${needs} by this user (uid ${uid()})`;
    throw new DataDirError(label, `${what} ${reason}`);
  }
}

/**
 * Makes sure the replica can use `dataDir`: an existing directory it can read and write, or a path it can create
 * (its closest existing parent is a writable directory). `label` names the setting in messages (`--data-dir /x`).
 */
export async function checkDataDir(dataDir: string, label: string): Promise<void> {
  const absolute = resolve(dataDir);
  try {
    await checkDirectory(absolute, USE, label, "it");
    return;
  } catch (error) {
    if (error instanceof DataDirError) throw error;
    if (errnoOf(error) === "ENOTDIR") throw new DataDirError(label, "a part of its path is a file, not a directory");
    if (errnoOf(error) === "EACCES") {
      throw new DataDirError(label, `a directory on its path is not open to this user (uid ${uid()})`);
    }
    if (errnoOf(error) !== "ENOENT") throw new DataDirError(label, `cannot be used: ${(error as Error).message}`);
  }
  // It does not exist yet: the replica creates it, so its closest existing parent must let it.
  let parent = dirname(absolute);
  for (let depth = 0; depth < ANCESTORS_MAX; depth++) {
    try {
      await checkDirectory(parent, CREATE_IN, label, `cannot be created: ${parent}`);
      return;
    } catch (error) {
      if (error instanceof DataDirError) throw error;
      if (errnoOf(error) === "ENOTDIR") throw new DataDirError(label, "a part of its path is a file, not a directory");
      if (errnoOf(error) !== "ENOENT" || dirname(parent) === parent) {
        throw new DataDirError(label, `cannot be created: ${(error as Error).message}`);
      }
      parent = dirname(parent);
    }
  }
  throw new DataDirError(label, `cannot be created: no existing parent within ${ANCESTORS_MAX} levels`);
}
