// One process per WAL: a lock file holding the owner's pid. Two agents started with the same data directory
// would interleave appends and destroy the log; the second one must stop with a clear error instead.
// A lock left by a killed process (its pid no longer exists) is taken over, so kill -9 needs no manual cleanup.
import { open, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { VigieError } from "../../errors.js";
import { isProcessAlive } from "../../process-alive.js";

const LOCK_FILE = "LOCK";

export class WalLockedError extends VigieError {
  constructor(lockPath: string, pid: number) {
    super(
      "VIGIE_ERR_WAL_LOCKED",
      `WAL in use by process ${pid} (lock file ${lockPath}): stop that process, or delete the file if it is not vigie`,
    );
  }
}

/** Takes the lock of `dir`; returns the function that releases it. Throws WalLockedError. */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const mine = `${process.pid}\n`;
  try {
    const handle = await open(path, "wx", 0o600);
    try {
      await handle.writeFile(mine);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    const owner = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
    // The same process may reopen after dropping a WAL without closing it (a simulated crash in tests).
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && isProcessAlive(owner)) {
      throw new WalLockedError(path, owner);
    }
    await writeFile(path, mine, { mode: 0o600 });
  }
  return async () => {
    const content = await readFile(path, "utf8").catch(() => "");
    if (content === mine) await rm(path, { force: true });
  };
}
