// `vigie services [NAME] [--all]`: the registered service instances, read from `/services/` in the store.
// Healthy (passing) ones only by default, like the `service` template helper sees them; `--all` adds the critical
// ones (failing their check, waiting for their lease to expire). Table for people, `-w json` for scripts.

import { UsageError } from "../errors.js";
import { parseInstance, SERVICES_PREFIX, type ServiceInstance } from "../services/index.js";
import { StoreClient } from "../store/client.js";
import type { ClientOptions } from "./options.js";

/** More instances than this is not a listing anyone reads; the command says so instead of flooding the terminal. */
const LIST_MAX_INSTANCES = 10_000;

export async function runServices(
  name: string | undefined,
  options: ClientOptions & { all: boolean },
): Promise<number> {
  if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new UsageError(`service name "${name}": must be letters, digits, '.', '_' or '-'`);
  }
  const client = new StoreClient({ endpoints: options.endpoints, requestTimeoutMs: options.timeoutMs });
  try {
    const prefix = name === undefined ? SERVICES_PREFIX : `${SERVICES_PREFIX}${name}/`;
    const { kvs, more } = await client.range(prefix, { prefix: true, limit: LIST_MAX_INSTANCES, sortOrder: "ASCEND" });
    const listed: ServiceInstance[] = [];
    for (const kv of kvs) {
      try {
        listed.push(parseInstance(kv.key.toString("utf8"), kv.value.toString("utf8")));
      } catch (error) {
        process.stderr.write(`warning: skipping ${(error as Error).message}\n`);
      }
    }
    const shown = listed
      .filter((instance) => options.all || instance.health === "passing")
      .sort((a, b) => compare(a.name, b.name) || compare(a.id, b.id));
    if (options.writeOut === "json") process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    else process.stdout.write(formatTable(shown));
    if (more) process.stderr.write(`warning: only the first ${LIST_MAX_INSTANCES} entries under ${prefix} were read\n`);
    return 0;
  } finally {
    await client.close();
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Aligned columns: NAME, ID, ADDRESS, HEALTH, TAGS. */
export function formatTable(instances: ServiceInstance[]): string {
  const rows = [
    ["NAME", "ID", "ADDRESS", "HEALTH", "TAGS"],
    ...instances.map((instance) => [
      instance.name,
      instance.id,
      instance.address,
      instance.health,
      instance.tags.join(","),
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join("  ")
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join("");
}
