// How much of node's linker-tables segment a process has resident: the read-only mapping of offset 0 of node's own
// object (the executable, or libnode.so in a distribution's build), which the release-memory addon drops
// (native/release-memory.c). Read from /proc/<pid>/smaps.
import { readFileSync, readlinkSync } from "node:fs";

export interface LinkerTablesMapping {
  sizeKb: number;
  rssKb: number;
}

const MAPPING_HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \d+\s+(.*)$/;

/** Undefined when node's object maps no read-only segment at offset 0 (an older layout: nothing is dropped). */
export function linkerTablesMapping(pid: number | "self"): LinkerTablesMapping | undefined {
  const smaps = readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n");
  const paths = smaps.map((line) => MAPPING_HEADER.exec(line)?.[5]).filter((path) => path !== undefined);
  const node = paths.find((path) => /\/libnode\.so[.\d]*$/.test(path)) ?? readlinkSync(`/proc/${pid}/exe`);
  let current: LinkerTablesMapping | undefined;
  for (const line of smaps) {
    // A mapping's header: "start-end perms offset dev inode path".
    const header = MAPPING_HEADER.exec(line);
    if (header) {
      if (current) return current;
      const [, start, end, perms, offset, path] = header;
      if (path === node && perms === "r--p" && Number.parseInt(offset!, 16) === 0)
        current = { sizeKb: (Number.parseInt(end!, 16) - Number.parseInt(start!, 16)) / 1024, rssKb: 0 };
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (current && rss) current.rssKb = Number(rss[1]);
  }
  return current;
}
