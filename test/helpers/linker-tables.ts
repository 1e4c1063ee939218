// How much of a process's executable's linker-tables segment is resident: the read-only mapping of the file's
// offset 0, which the release-memory addon drops (native/release-memory.c). Read from /proc/<pid>/smaps.
import { readFileSync, readlinkSync } from "node:fs";

export interface LinkerTablesMapping {
  sizeKb: number;
  rssKb: number;
}

/** Undefined when the executable maps no read-only segment at offset 0 (an older layout: nothing is dropped). */
export function linkerTablesMapping(pid: number | "self"): LinkerTablesMapping | undefined {
  const exe = readlinkSync(`/proc/${pid}/exe`);
  let current: LinkerTablesMapping | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    // A mapping's header: "start-end perms offset dev inode path".
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \d+\s+(.*)$/.exec(line);
    if (header) {
      if (current) return current;
      const [, start, end, perms, offset, path] = header;
      if (path === exe && perms === "r--p" && Number.parseInt(offset!, 16) === 0)
        current = { sizeKb: (Number.parseInt(end!, 16) - Number.parseInt(start!, 16)) / 1024, rssKb: 0 };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (current && rss) current.rssKb = Number(rss[1]);
  }
  return current;
}
