// Integration tests need real programs (nginx, haproxy, php, etcd). In CI (VIGIE_REQUIRE_INTEGRATION=1) a missing
// program fails the run; on a newcomer's machine the test is skipped with a printed reason.
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export const INTEGRATION_REQUIRED = process.env.VIGIE_REQUIRE_INTEGRATION === "1";

/** Absolute path of an executable on PATH (plus /usr/sbin, where Debian puts nginx and haproxy), or undefined. */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/local/sbin"];
  for (const dir of dirs) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/**
 * Returns the paths of the named programs, or undefined (after printing why) when one is missing and integration
 * tests are optional. Throws when they are required, so CI cannot go green by skipping.
 */
export function requireTools(suiteName: string, ...names: string[]): Record<string, string> | undefined {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const name of names) {
    const path = findExecutable(name);
    if (path === undefined) missing.push(name);
    else found[name] = path;
  }
  if (missing.length === 0) return found;
  const reason = `${suiteName}: needs ${missing.join(", ")} (apt-get install -y nginx haproxy php-cli etcd-server)`;
  if (INTEGRATION_REQUIRED) throw new Error(`${reason}; VIGIE_REQUIRE_INTEGRATION=1 forbids skipping`);
  console.log(`SKIP ${reason}`);
  return undefined;
}
