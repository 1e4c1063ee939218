// Whether a process id names a running process, without signalling it (signal 0 only checks).

/** True when `pid` exists. EPERM means it exists but belongs to another user: the real signal would then fail clearly. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
