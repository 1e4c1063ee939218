// Member and cluster identities. A static cluster's members must agree on every id before any of them has talked
// to another, so those ids are DERIVED from `--initial-cluster` (like etcd's cluster token hashing); a member that
// joins later gets a RANDOM id from the leader. Both are persisted in the data dir and never recomputed after.
import { createHash, randomBytes } from "node:crypto";
import { ConfigError } from "../../errors.js";

/** The largest id: ids travel as JSON numbers, so they must be safe integers (> 0; 0 means "nobody"). */
const MAX_ID = Number.MAX_SAFE_INTEGER;

/** A name=peerURL map, in the order the user wrote it. */
export type InitialCluster = ReadonlyArray<{ name: string; peerUrl: string }>;

/** A member name: what --name and --initial-cluster accept (it travels in URLs, logs and ids). */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Parses `--initial-cluster` (`a=http://h:2380,b=...`) or its YAML map form; errors name the flag and the part. */
export function parseInitialCluster(value: string | Record<string, string>): InitialCluster {
  const pairs: Array<[string, string]> =
    typeof value === "string"
      ? value
          .split(",")
          .map((part) => part.trim())
          .filter((part) => part.length > 0)
          .map((part) => {
            const eq = part.indexOf("=");
            if (eq <= 0) throw new ConfigError(`--initial-cluster: "${part}" is not name=peerURL`);
            return [part.slice(0, eq), part.slice(eq + 1)];
          })
      : Object.entries(value);
  if (pairs.length === 0) throw new ConfigError("--initial-cluster: names no member");
  if (pairs.length > 7) throw new ConfigError(`--initial-cluster: ${pairs.length} members, at most 7 voters`);
  const seen = new Set<string>();
  const out: Array<{ name: string; peerUrl: string }> = [];
  for (const [name, peerUrl] of pairs) {
    if (!NAME_PATTERN.test(name)) throw new ConfigError(`--initial-cluster: bad member name "${name}"`);
    if (seen.has(name)) throw new ConfigError(`--initial-cluster: member "${name}" is listed twice`);
    seen.add(name);
    out.push({ name, peerUrl: normalizePeerUrl(peerUrl, `--initial-cluster member "${name}"`) });
  }
  return out;
}

/** Checks an http(s) URL and drops a trailing slash, so the same URL always hashes the same. */
export function normalizePeerUrl(text: string, where: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`${where}: "${text}" is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${where}: "${text}" must be an http:// or https:// URL`);
  }
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    throw new ConfigError(`${where}: "${text}" must not have a path`);
  }
  return `${url.protocol}//${url.host}`;
}

function hashToId(text: string): number {
  const digest = createHash("sha256").update(text).digest();
  // 53 bits of the digest: always a safe integer; 0 is remapped since it means "nobody".
  const id = (digest.readUInt32BE(0) & 0x1f_ffff) * 2 ** 32 + digest.readUInt32BE(4);
  return id === 0 ? 1 : id;
}

/** The cluster id of a static cluster: a hash of its sorted member list, the same on every member. */
export function deriveClusterId(initial: InitialCluster): number {
  const canonical = initial.map((m) => `${m.name}=${m.peerUrl}`).sort();
  return hashToId(`vigie-cluster\n${canonical.join("\n")}`);
}

/** The member id of a static cluster's founding member. */
export function deriveMemberId(clusterId: number, name: string, peerUrl: string): number {
  return hashToId(`vigie-member\n${clusterId}\n${name}\n${peerUrl}`);
}

/** A fresh random id for a member added at run time (the leader picks it, see `addMember`). */
export function randomMemberId(): number {
  const bytes = randomBytes(8);
  const id = (bytes.readUInt32BE(0) & 0x1f_ffff) * 2 ** 32 + bytes.readUInt32BE(4);
  return id === 0 || id > MAX_ID ? 1 : id;
}

/** ids are printed like etcd prints them in logs: hexadecimal. */
export function idHex(id: number): string {
  return id.toString(16);
}
