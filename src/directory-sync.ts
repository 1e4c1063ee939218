// Making a create, rename or unlink durable: the entry lives in its directory, so the directory is fsynced. In the
// thread pool, so that neither the store (WAL segments, snapshots) nor the sidecar (after its reloads) blocks its
// event loop on it.
import { open } from "node:fs/promises";

export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
