// One process per WAL: a lock file holding the owner's pid. Two agents started with the same data directory
// would interleave appends and destroy the log; the second one must stop with a clear error instead.
// A lock left by a killed process (its pid no longer exists) is taken over, so kill -9 needs no manual cleanup.
// The lock also records when its owner started (Linux: /proc/PID/stat): in a container restarted after kill -9 the
// old pid is soon another live process (pids start over), which must not keep the data dir locked forever.
//
// Node has no flock(), so the lock is built from two atomic filesystem operations:
// - link(temp, LOCK) creates LOCK with its content already complete, or fails if it exists. (open "wx" then write
//   left a moment where LOCK existed empty: a racer read no pid, took it for stale and took it over as well.)
// - a stale LOCK is replaced only by the holder of a second lock, LOCK.takeover, taken the same way: racers that all
//   saw the same dead pid used to rewrite LOCK one after the other and ALL went on (3 of 6 in test/unit/wal/lock.test.ts).
import { readFileSync } from "node:fs";
import { link, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { VigieError } from "../../errors.js";
import { isProcessAlive } from "../../process-alive.js";

const LOCK_FILE = "LOCK";
const TAKEOVER_FILE = "LOCK.takeover";

/** Another live process holds the lock: of a WAL, or of a whole data dir (`subject`). */
export class WalLockedError extends VigieError {
  constructor(lockPath: string, pid: number, subject = "WAL") {
    super(
      "VIGIE_ERR_WAL_LOCKED",
      `${subject} in use by process ${pid} (lock file ${lockPath}): stop that process, or delete the file if it is not vigie`,
    );
  }
}

/**
 * Takes the lock of `dir`; returns the function that releases it. Throws WalLockedError, which names `subject` (what
 * the directory is to the user).
 */
export async function lockDirectory(dir: string, subject = "WAL"): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const mine = `${process.pid} ${processStartTicks(process.pid) ?? "?"}\n`;
  const temp = join(dir, `${LOCK_FILE}.${process.pid}.tmp`);
  await writeFile(temp, mine, { mode: 0o600 });
  try {
    if (!(await linkIfAbsent(temp, path))) await takeOverStale(dir, path, temp, subject);
  } finally {
    await rm(temp, { force: true });
  }
  return async () => {
    const content = await readFile(path, "utf8").catch(() => "");
    if (content === mine) await rm(path, { force: true });
  };
}

/** Replaces a lock whose owner is dead (or is this process), holding LOCK.takeover meanwhile. */
async function takeOverStale(dir: string, path: string, temp: string, subject: string): Promise<void> {
  checkOwnerGone(path, await readOwner(path), subject);
  const takeover = join(dir, TAKEOVER_FILE);
  if (!(await linkIfAbsent(temp, takeover))) {
    const other = await readOwner(takeover);
    // Another process is taking the lock over right now: it wins.
    if (isOtherLiveProcess(other)) throw new WalLockedError(path, other.pid, subject);
    // Left by a process killed during its takeover (a window of a few system calls): clear it and try once more.
    await rm(takeover, { force: true });
    if (!(await linkIfAbsent(temp, takeover))) throw new WalLockedError(path, (await readOwner(takeover)).pid, subject);
  }
  try {
    // Read again under the takeover lock: the owner may have released it and someone else taken it since.
    checkOwnerGone(path, await readOwner(path), subject);
    // rename replaces atomically: LOCK is never missing, so no fresh link() can win meanwhile.
    await rename(temp, path);
  } finally {
    await rm(takeover, { force: true });
  }
}

interface Owner {
  /** NaN when the file is missing or unreadable: nobody holds it. */
  pid: number;
  /** When the owner started, or null when unknown (not Linux, or a lock written by an older vigie). */
  startTicks: string | null;
}

function checkOwnerGone(path: string, owner: Owner, subject: string): void {
  if (isOtherLiveProcess(owner)) throw new WalLockedError(path, owner.pid, subject);
}

/**
 * Is the owner a running process other than this one? (The same process may reopen a WAL it dropped unclosed.) A
 * live process with the owner's pid but another start time is not the owner: its pid was reused.
 */
function isOtherLiveProcess({ pid, startTicks }: Owner): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || !isProcessAlive(pid)) return false;
  const current = processStartTicks(pid);
  return startTicks === null || current === null || current === startTicks;
}

async function readOwner(path: string): Promise<Owner> {
  const [pid, startTicks] = (await readFile(path, "utf8").catch(() => "")).trim().split(" ");
  return {
    pid: Number.parseInt(pid ?? "", 10),
    startTicks: startTicks === undefined || startTicks === "?" ? null : startTicks,
  };
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or null where there is no such file. */
function processStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/** link(from, to): true when created, false when `to` exists. */
async function linkIfAbsent(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
}
